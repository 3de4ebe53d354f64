"""The decorator every function wears, and the ``Call`` it hands to the function.

``endpoint(name)`` turns a function of a ``Call`` into a Flask/functions-framework view:
it checks method and path against the route table (a function served alone must not
trust anyone's URL map), hands the body to a ``Body`` (``common/body.py``: JSON even on
GET and DELETE, forms, streamed multipart), resolves the caller's identity
(``common/identity.py``), renders every ``ConnectorError`` as ``application/problem+json``
and anything else as a generic 500, counts the request, and has the ``Body`` leave the
request body fully read (or the connection marked to close).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from flask import Request, Response

from common import metrics
from common.backends.base import Archive, Storage
from common.body import Body, arm_socket, close_after
from common.caller_auth import check_caller
from common.errors import (
    PROBLEM_CONTENT_TYPE,
    BadRequest,
    ConnectorError,
    MethodNotAllowed,
    NotFound,
    RequestHeaderFieldsTooLarge,
    problem_body,
    problem_from_error,
)
from common.identity import Identity, resolve_identity
from common.routes import FILE_STORAGE, METADATA, Route, route
from common.runtime import Runtime, get_runtime
from common.streams import WatchedBody, watch_answer

log = logging.getLogger("rds.http")
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
    """One request as a function sees it: path parameters, body, identity, backend."""

    def __init__(self, route: Route, request: Request, runtime: Runtime, params: dict[str, str]):
        self.route = route
        self.request = request
        self.runtime = runtime
        self.settings = runtime.settings
        self.params = params
        self.body = Body(
            request,
            runtime.settings.max_json_bytes,
            idle_timeout=runtime.settings.body_idle_timeout,
        )
        self._identity: Identity | None = None

    # -- body --------------------------------------------------------------------------
    @property
    def is_multipart(self) -> bool:
        return self.body.is_multipart

    @property
    def fields(self) -> dict[str, Any]:
        """The request's fields (``Body.fields``)."""
        return self.body.fields()

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
    def backend(self) -> Archive | Storage:
        """The backend serving this route's interface (404 when not configured here)."""
        return self.archive if self.route.interface == METADATA else self.storage

    @property
    def archive(self) -> Archive:
        """The metadata backend (404 when this deployment does not serve the interface)."""
        archive = self.runtime.archive if self.route.interface == METADATA else None
        if archive is None:
            raise NotFound(f"this deployment does not serve the {self.route.interface} interface")
        return archive

    @property
    def storage(self) -> Storage:
        """The fileStorage backend (404 when this deployment does not serve the interface)."""
        storage = self.runtime.storage if self.route.interface == FILE_STORAGE else None
        if storage is None:
            raise NotFound(f"this deployment does not serve the {self.route.interface} interface")
        return storage

    @property
    def identity(self) -> Identity:
        """The caller from ``userId`` (and ``apiKey``), with a token when one is needed."""
        if self._identity is None:
            fields = self.fields
            self._identity = resolve_identity(
                fields.get("userId"),
                fields.get("apiKey"),
                servicename=self.settings.servicename,
                needs_token=self.backend.needs_token,
                lookup=self._lookup_token,
            )
        return self._identity

    def _lookup_token(self, user: str) -> str | None:
        """The user's token from the Port service (``None`` when none is configured).
        Imported here: only backends that need a token ask, and ``requests`` comes with it."""
        url = self.settings.port_service_url
        if not url:
            return None
        from common.port_service import lookup_token

        return lookup_token(self.runtime.session, url, user, self.settings.servicename)


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
    transfer = metrics.Transfer(the_route.name, request.environ)  # before the body is read
    call: Call | None = None
    problem: ConnectorError | None = None
    try:
        runtime = get_runtime()
        transfer.backend = _backend_name(runtime, the_route)
        check_caller(runtime.settings, request)  # 401 before anything else is looked at
        params = _check_route(the_route, request)
        _check_headers(request, runtime.settings.max_header_bytes)
        call = Call(the_route, request, runtime, params)
        response = _to_response(fn(call))
    except ConnectorError as err:
        problem = err
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
        call.body.finish(response)
        _bound_sending(call, response)
    elif request.content_length or request.headers.get("Transfer-Encoding"):
        close_after(response)  # refused before the body: it is not read, the connection ends
    response.headers["X-Request-ID"] = request_id
    elapsed = time.perf_counter() - started
    metrics.observe(the_route.name, request.method, response.status_code, elapsed)
    # a 4xx line says why: the problem's title and the field at fault
    why = f" title={problem.title!r} field={problem.field or '-'}" if problem else ""
    log.info(
        "access function=%s method=%s path=%s status=%d ms=%.1f request_id=%s%s",
        the_route.name,
        request.method,
        request.path,
        response.status_code,
        elapsed * 1000,
        request_id,
        why,
    )
    return transfer.finish(response)


def _bound_sending(call: Call, response: Response) -> None:
    """A client that stops taking the answer costs a bounded time: each write of the
    answer (a 64 KiB chunk of a download; a JSON answer whole) must reach the socket within
    ``CONNECTOR_SEND_IDLE_TIMEOUT``, else the server closes the connection (gevent parks a
    stalled reader cheaply, but without this it would hold its connection, its file or
    upstream answer, for ever). The socket's own timeout comes back after the answer; an
    answer cut short is logged."""
    sock, before = arm_socket(call.request, call.settings.send_idle_timeout)
    if sock is None:
        return

    def ended(sent: int, complete: bool) -> None:
        with contextlib.suppress(OSError):  # the server may have closed it already
            sock.settimeout(before)
        if not complete and _has_body(call.request.method, response.status_code):
            log.info("answer.unfinished function=%s sent=%d", call.route.name, sent)

    watch_answer(response, ended)


def _has_body(method: str, status: int) -> bool:
    """Whether the server sends the answer's body at all (not for HEAD, 1xx, 204, 304)."""
    return method != "HEAD" and status >= 200 and status not in (204, 304)


def _backend_name(runtime: Runtime, the_route: Route) -> str:
    """The name of the backend serving the route's interface (a metrics label)."""
    settings = runtime.settings
    return (
        settings.metadata_backend if the_route.interface == METADATA else settings.storage_backend
    )


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

    On Cloud Functions (gen2 runs on Cloud Run, which sets ``K_SERVICE``) an HTTP/1 answer
    with a ``Content-Length`` is capped at 32 MiB; a streamed one (chunked) is not. There
    the answer goes without ``Content-Length``, chunked, and a break-off shows as a
    missing last chunk instead.
    """
    chunks = iter(download.chunks)
    try:
        first = next(chunks, None)
    except BaseException:
        if download.close:
            download.close()
        raise

    def release(_sent: int, _complete: bool) -> None:
        if download.close:
            download.close()

    # released at its end or its close, even one never started (a HEAD), which a
    # generator's ``finally`` would miss
    body = WatchedBody(itertools.chain([] if first is None else [first], chunks), release)
    resp = Response(
        body, status=download.status, content_type=download.content_type, direct_passthrough=True
    )
    if download.size is not None and not os.environ.get("K_SERVICE"):
        resp.headers["Content-Length"] = str(download.size)
    if download.content_range:
        resp.headers["Content-Range"] = download.content_range
    resp.headers["Accept-Ranges"] = "bytes"
    return resp
