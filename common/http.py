"""The decorator every function wears, and the ``Call`` it hands to the function.

``endpoint(name)`` turns a function of a ``Call`` into a Flask/functions-framework view:
it checks method and path against the route table (a function served alone must not
trust anyone's URL map), parses the body the way RDS sends it (JSON even on GET and
DELETE, forms, streamed multipart), resolves the caller's identity, renders every
``ConnectorError`` as ``application/problem+json`` and anything else as a generic 500,
counts the request, and leaves the request body fully read (or the connection marked to
close) so no server ever reads a large body into memory behind our back.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from flask import Request, Response

from common import metrics
from common.caller_auth import check_caller
from common.errors import (
    PROBLEM_CONTENT_TYPE,
    BadRequest,
    ConnectorError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestHeaderFieldsTooLarge,
    UnsupportedMediaType,
    problem_body,
    problem_from_error,
)
from common.identity import Identity, lookup_token, parse_user_id
from common.multipart import MAX_FIELD_BYTES, MultipartReader, Part
from common.routes import FILE_STORAGE, METADATA, Route, route
from common.runtime import Runtime, get_runtime

log = logging.getLogger("rds.http")
DRAIN_LIMIT = 64 * 1024 * 1024
Answer = Response | dict[str, Any] | list[Any] | tuple[Any, int] | None


def json_response(data: Any, status: int = 200, content_type: str = "application/json") -> Response:
    """A JSON answer (keys in the order given)."""
    return Response(json.dumps(data, ensure_ascii=False), status=status, content_type=content_type)


def problem_response(
    err: ConnectorError, request: Request | None, request_id: str | None
) -> Response:
    """A ``ConnectorError`` as ``application/problem+json`` with its headers."""
    body = problem_from_error(
        err, instance=request.path if request else None, request_id=request_id
    )
    resp = json_response(body, err.status, PROBLEM_CONTENT_TYPE)
    resp.headers.update(err.headers)
    return resp


class Call:
    """One request as a function sees it: path parameters, fields, identity, backends."""

    def __init__(self, route: Route, request: Request, runtime: Runtime, params: dict[str, str]):
        self.route = route
        self.request = request
        self.runtime = runtime
        self.settings = runtime.settings
        self.params = params
        self._fields: dict[str, Any] | None = None
        self._identity: Identity | None = None
        self.reader: MultipartReader | None = None
        self.part: Part | None = None  # the first file part, reached but not yet read
        self._field_bytes = 0  # text-field bytes of a multipart body so far
        self.body_pending = True  # the body has not been read to its end

    # -- body --------------------------------------------------------------------------
    @property
    def mimetype(self) -> str:
        return self.request.mimetype or ""

    @property
    def is_multipart(self) -> bool:
        return self.mimetype == "multipart/form-data"

    @property
    def fields(self) -> dict[str, Any]:
        """The request's fields: JSON object or form, over the query string's."""
        if self._fields is None:
            self._fields = {**self.request.args.to_dict(), **self._parse_body()}
        return self._fields

    def _parse_body(self) -> dict[str, Any]:
        req = self.request
        if self.is_multipart:
            return self._read_multipart_fields()
        length = req.content_length
        if length is not None and length > self.settings.max_json_bytes:
            raise PayloadTooLarge(
                f"the body is over {self.settings.max_json_bytes} bytes", field="body"
            )
        mimetype = self.mimetype
        # Read at most the limit ourselves: a chunked body has no Content-Length to check
        # first, and werkzeug's get_data()/form would read it whole before any limit applies.
        raw = read_bounded(req.stream, self.settings.max_json_bytes)
        self.body_pending = False
        if mimetype == "application/x-www-form-urlencoded":
            try:
                pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError:
                raise BadRequest("the form is not UTF-8", field="body") from None
            form: dict[str, Any] = {}
            for key, value in pairs:
                form.setdefault(key, value)
            return form
        if not raw.strip():
            return {}
        if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
            raise UnsupportedMediaType(
                f"send the body as application/json, not {mimetype}", field="Content-Type"
            )
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the body is not valid JSON", field="body") from None
        except RecursionError:  # "[[[[..." a few hundred thousand deep, well under the size limit
            raise BadRequest("the body's JSON is nested too deeply", field="body") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object", field="body")
        return data

    def _read_multipart_fields(self) -> dict[str, Any]:
        """Read form fields up to the first file part, which stays unread in ``self.part``."""
        boundary = self.request.mimetype_params.get("boundary", "")
        self.reader = MultipartReader(self.request.stream, boundary, self.request.content_length)
        fields: dict[str, Any] = {}
        while (part := self.reader.next_part()) is not None:
            if part.is_file:
                self.part = part
                return fields
            fields[part.name] = self._read_field()
        self.body_pending = False
        return fields

    def _read_field(self) -> str:
        """One text field, all of a request's fields together within ``max_json_bytes``."""
        assert self.reader is not None
        budget = self.settings.max_json_bytes - self._field_bytes
        value = self.reader.read_value(limit=max(min(budget, MAX_FIELD_BYTES), 0))
        self._field_bytes += len(value.encode("utf-8"))
        return value

    def next_file_part(self) -> Part | None:
        """The next file part of a multipart body (the first one after ``fields``)."""
        self.fields  # noqa: B018 - make sure the fields before the first file are read
        if self.reader is None:
            return None
        part, self.part = self.part, None
        if part is not None:
            return part
        while (part := self.reader.next_part()) is not None:
            if part.is_file:
                return part
            self.fields[part.name] = self._read_field()
        self.body_pending = False
        return None

    def field(self, name: str, *, required: bool = False) -> Any:
        """A field's value; ``None`` or a 400 naming it when absent."""
        value = self.fields.get(name)
        if value in (None, "") and required:
            raise BadRequest(f"{name} is missing", field=name)
        return value

    def flag(self, name: str, default: bool) -> bool:
        """A yes/no field (JSON boolean, or ``true``/``false``/``1``/``0`` in a form)."""
        value = self.fields.get(name)
        if value in (None, ""):
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise BadRequest(f"{name} must be true or false", field=name)

    # -- who and where -----------------------------------------------------------------
    @property
    def backend(self) -> Any:
        """The backend serving this route's interface (404 when not configured here)."""
        backend = {METADATA: self.runtime.archive, FILE_STORAGE: self.runtime.storage}.get(
            self.route.interface
        )
        if backend is None:
            raise NotFound(f"this deployment does not serve the {self.route.interface} interface")
        return backend

    @property
    def archive(self) -> Any:
        return self.backend

    @property
    def storage(self) -> Any:
        return self.backend

    @property
    def identity(self) -> Identity:
        """The caller from ``userId`` (and ``apiKey``), with a token when one is needed."""
        if self._identity is None:
            who = parse_user_id(
                self.fields.get("userId"), self.settings.servicename, self.fields.get("apiKey")
            )
            backend = self.backend
            if who.token is None and getattr(backend, "needs_token", False):
                if self.settings.port_service_url:
                    token = lookup_token(
                        self.runtime.session,
                        self.settings.port_service_url,
                        who.user,
                        self.settings.servicename,
                    )
                    who = Identity(who.user, token, who.service)
                else:
                    who.require_token()
            self._identity = who
        return self._identity

    # -- end of the body ---------------------------------------------------------------
    def finish_body(self, response: Response) -> None:
        """Read what is left of the body, or mark the connection to close when too much is."""
        if not self.body_pending:
            return
        length = self.request.content_length
        consumed = self.reader.consumed if self.reader else 0
        if length is None or length - consumed > DRAIN_LIMIT:
            # too much left, or no telling how much (chunked): do not read it, hang up
            _close_after(response)
            self.body_pending = False
            return
        try:
            if self.reader is not None:
                self.reader.finish()
            else:
                stream = self.request.stream
                while stream.read(1024 * 1024):
                    pass
        except Exception:  # noqa: BLE001 - a broken body only means: close the connection
            _close_after(response)
        self.body_pending = False


def read_bounded(stream: Any, limit: int) -> bytes:
    """The whole (small) body, refused with 413 as soon as it passes ``limit`` bytes."""
    out = bytearray()
    while True:
        try:
            chunk = stream.read(64 * 1024)
        except Exception as exc:
            raise BadRequest("the request body broke off", field="body") from exc
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes", field="body")


def _close_after(response: Response) -> None:
    """Answer without reading the rest of the body; a streamed body stops frameworks'
    read-everything-after-the-handler step (functions-framework's ``read_request``)."""
    response.headers["Connection"] = "close"
    data = response.get_data()
    response.response = iter([data])  # type: ignore[assignment]
    response.headers["Content-Length"] = str(len(data))


def _to_response(answer: Answer) -> Response:
    if isinstance(answer, Response):
        return answer
    if isinstance(answer, tuple):
        body, status = answer
        if body is None:
            return Response(status=status)
        return json_response(body, status)
    if answer is None:
        return Response(status=204)
    return json_response(answer)


def endpoint(name: str) -> Callable[[Callable[[Call], Answer]], Callable[[Request], Response]]:
    """Make ``fn(call)`` the HTTP function of route ``name``."""
    the_route = route(name)

    def wrap(fn: Callable[[Call], Answer]) -> Callable[[Request], Response]:
        @functools.wraps(fn)
        def handler(request: Request) -> Response:
            return handle(the_route, fn, request)

        return handler

    return wrap


def handle(the_route: Route, fn: Callable[[Call], Answer], request: Request) -> Response:
    """Run one request through ``fn`` with everything the decorator promises."""
    started = time.perf_counter()
    request_id = _request_id(request)
    call: Call | None = None
    try:
        runtime = get_runtime()
        check_caller(runtime.settings, request)  # 401 before anything else is looked at
        params = _check_route(the_route, request)
        _check_headers(request, runtime.settings.max_header_bytes)
        call = Call(the_route, request, runtime, params)
        response = _to_response(fn(call))
    except ConnectorError as err:
        response = problem_response(err, request, request_id)
        if err.status >= 500:
            log.warning(
                "request.failed function=%s status=%d detail=%s",
                the_route.name,
                err.status,
                err.detail,
            )
    except Exception:
        log.exception("request.crashed function=%s request_id=%s", the_route.name, request_id)
        response = json_response(
            problem_body(
                500,
                "Internal error",
                "the connector failed; see its log",
                instance=request.path,
                request_id=request_id,
            ),
            500,
            PROBLEM_CONTENT_TYPE,
        )
    if call is not None:
        call.finish_body(response)
    elif request.content_length:
        _close_after(response)
    response.headers["X-Request-ID"] = request_id
    elapsed = time.perf_counter() - started
    metrics.observe(the_route.name, request.method, response.status_code, elapsed)
    log.info(
        "access function=%s method=%s path=%s status=%d ms=%.1f request_id=%s",
        the_route.name,
        request.method,
        request.path,
        response.status_code,
        elapsed * 1000,
        request_id,
    )
    return response


def _request_id(request: Request) -> str:
    given = request.headers.get("X-Request-ID", "")
    if given and len(given) <= 128 and given.replace("-", "").isalnum():
        return given
    return uuid.uuid4().hex


def _check_headers(request: Request, limit: int) -> None:
    """Refuse header blocks over ``CONNECTOR_MAX_HEADER_BYTES`` (RDS sends a few hundred
    bytes); the servers' own limits (gunicorn: 8190 bytes a field, 100 fields) come first."""
    size = sum(len(k) + len(v) + 4 for k, v in request.headers.items())
    if size > limit:
        raise RequestHeaderFieldsTooLarge(
            f"the request's headers are over {limit} bytes", field="headers"
        )


def _check_route(the_route: Route, request: Request) -> dict[str, str]:
    method = request.method
    if method != the_route.method and not (method == "HEAD" and the_route.method == "GET"):
        raise MethodNotAllowed(
            f"{the_route.name} answers {the_route.method}, not {method}",
            headers={"Allow": the_route.method},
        )
    params = the_route.match(request.path)
    if params is None:
        if the_route.params:
            raise NotFound(f"{request.path} is not a path of {the_route.name}")
        return {}
    return params


def stream_response(download: Any) -> Response:
    """A ``Download`` as a streamed answer that releases its source when done.

    The first chunk is read here, inside the endpoint: a source that fails before its first
    byte (a storage resetting the connection) answers a problem, not the server's bare 500
    that a failure in the not-yet-started body would become. A later failure can only
    break the answer off, which the client sees against ``Content-Length``.
    """
    chunks = iter(download.chunks)
    try:
        first = next(chunks, None)
    except BaseException:
        if download.close:
            download.close()
        raise

    def body() -> Iterator[bytes]:
        try:
            if first is not None:
                yield first
            yield from chunks
        finally:
            if download.close:
                download.close()

    resp = Response(
        body(), status=download.status, content_type=download.content_type, direct_passthrough=True
    )
    if download.size is not None:
        resp.headers["Content-Length"] = str(download.size)
    if download.content_range:
        resp.headers["Content-Range"] = download.content_range
    resp.headers["Accept-Ranges"] = "bytes"
    return resp
