"""A request's body as RDS sends it: fields (JSON even on GET and DELETE, a form, or the
text fields of a streamed multipart body) and the file parts of a multipart body.

``Body`` owns the multipart reader, the budget all text fields share
(``CONNECTOR_MAX_JSON_BYTES``) and the first file part, which is reached while the fields
before it are read but not yet read itself. It also leaves the body fully read at the end
(or the connection marked to close), so no server reads a large body into memory behind
our back. Every failure is a ``ConnectorError`` naming the field at fault.

A client that stops sending costs a bounded time: under gunicorn, each read of the body
waits at most ``CONNECTOR_BODY_IDLE_TIMEOUT`` seconds for bytes (a timeout on the client's
socket, ``environ["gunicorn.socket"]``, for this request only), then the request is a 408
naming ``body`` or ``file``, the partial upload is discarded like any broken one, and the
connection is closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import parse_qsl

from flask import Request, Response

from common.errors import (
    BadRequest,
    ConnectorError,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from common.metadata import parse_json
from common.multipart import MAX_FIELD_BYTES, MultipartReader, Part
from common.streams import CHUNK_SIZE

DRAIN_LIMIT = 64 * 1024 * 1024
SECRET_FIELDS = ("userId", "apiKey")  # they carry tokens: refused in the query string


@dataclass
class FilePart:
    """One file part of a multipart body; ``chunks`` yields its bytes as they arrive."""

    name: str
    filename: str
    content_type: str
    size_hint: int | None
    chunks: Iterator[bytes]


class BodyStream:
    """The request's body stream, its failures as problems: a read that waited past the idle
    timeout is a 408, any other a 400 (both ``body``; the multipart reader says ``file``
    inside a file part). After either the body is ``broken``: never read again."""

    def __init__(self, stream: BinaryIO | Any, idle_timeout: float | None = None) -> None:
        self._stream = stream
        self.idle_timeout = idle_timeout
        self.broken = False

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self._stream.read(size))
        except Exception as exc:
            self.broken = True
            if _timed_out(exc):
                raise RequestTimeout(
                    f"no byte of the body arrived for {self.idle_timeout or 0:g} seconds; "
                    "the partial upload was discarded",
                    field="body",
                ) from exc
            raise BadRequest("the request body broke off", field="body") from exc


def _timed_out(exc: BaseException | None) -> bool:
    """Whether the socket's timeout is behind ``exc`` (werkzeug's stream turns it into a
    ``ClientDisconnected`` raised while handling it)."""
    for _ in range(5):
        if exc is None:
            return False
        if isinstance(exc, TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class Body:
    """The fields and file parts of one request's body, read once, in order, as needed."""

    def __init__(
        self, request: Request, max_json_bytes: int, *, idle_timeout: float | None = None
    ) -> None:
        self.request = request
        self.limit = max_json_bytes
        self.stream = BodyStream(request.stream, idle_timeout)
        self._socket, self._socket_timeout = arm_socket(request, idle_timeout)
        self._fields: dict[str, Any] | None = None
        self._reader: MultipartReader | None = None
        self._part: Part | None = None  # the first file part, reached but not yet read
        self._field_bytes = 0  # text-field bytes of a multipart body so far
        self.pending = True  # the body has not been read to its end

    @property
    def mimetype(self) -> str:
        return self.request.mimetype or ""

    @property
    def is_multipart(self) -> bool:
        return self.mimetype == "multipart/form-data"

    def fields(self) -> dict[str, Any]:
        """The request's fields: JSON object or form, over the query string's. In a
        multipart body, the fields before the first file part (later ones join as
        ``files()`` passes them). Credentials never come from the query string, which
        proxies and access logs keep: a ``userId`` there is a 400 naming it."""
        if self._fields is None:
            query = self.request.args.to_dict()
            for name in SECRET_FIELDS:
                if name in query:
                    raise BadRequest(
                        f"send {name} in the body or form, never in the query string",
                        field=name,
                    )
            self._fields = {**query, **self._parse()}
        return self._fields

    def files(self) -> Iterator[FilePart]:
        """The file parts of a multipart body, in order (none for other bodies). Read each
        part's ``chunks`` (or leave them: the next part skips what is left)."""
        fields = self.fields()
        while (part := self._next_file_part(fields)) is not None:
            assert self._reader is not None
            yield FilePart(
                part.name,
                part.filename or "",
                part.content_type,
                part.size_hint,
                self._reader.iter_data(),
            )

    # -- parsing -----------------------------------------------------------------------
    def _parse(self) -> dict[str, Any]:
        if self.is_multipart:
            return self._read_multipart_fields()
        length = self.request.content_length
        if length is not None and length > self.limit:
            raise PayloadTooLarge(f"the body is over {self.limit} bytes", field="body")
        # Read at most the limit ourselves: a chunked body has no Content-Length to check
        # first, and werkzeug's get_data()/form would read it whole before any limit applies.
        raw = read_bounded(self.stream, self.limit)
        self.pending = False
        if self.mimetype == "application/x-www-form-urlencoded":
            return _form(raw)
        return _json_object(raw, self.mimetype)

    def _read_multipart_fields(self) -> dict[str, Any]:
        """Read form fields up to the first file part, which stays unread in ``_part``."""
        boundary = self.request.mimetype_params.get("boundary", "")
        self._reader = MultipartReader(self.stream, boundary, self.request.content_length)
        fields: dict[str, Any] = {}
        while (part := self._reader.next_part()) is not None:
            if part.is_file:
                self._part = part
                return fields
            fields[part.name] = self._read_field()
        self.pending = False
        return fields

    def _read_field(self) -> str:
        """One text field, all of a request's fields together within ``limit``."""
        assert self._reader is not None
        budget = self.limit - self._field_bytes
        value = self._reader.read_value(limit=max(min(budget, MAX_FIELD_BYTES), 0))
        self._field_bytes += len(value.encode("utf-8"))
        return value

    def _next_file_part(self, fields: dict[str, Any]) -> Part | None:
        if self._reader is None:
            return None
        part, self._part = self._part, None
        if part is not None:
            return part
        while (part := self._reader.next_part()) is not None:
            if part.is_file:
                return part
            fields[part.name] = self._read_field()
        self.pending = False
        return None

    # -- end of the body ---------------------------------------------------------------
    def finish(self, response: Response) -> None:
        """Read what is left of the body, or mark the connection to close when too much is
        (or the body broke); then give the client's socket its own timeout back."""
        try:
            self._finish(response)
        finally:
            if self._socket is not None:
                self._socket.settimeout(self._socket_timeout)

    def _finish(self, response: Response) -> None:
        if not self.pending:
            return
        length = self.request.content_length
        consumed = self._reader.consumed if self._reader else 0
        if self.stream.broken or length is None or length - consumed > DRAIN_LIMIT:
            # broken, too much left, or no telling how much (chunked): hang up, do not read
            close_after(response)
            self.pending = False
            return
        try:
            if self._reader is not None:
                self._reader.finish()
            else:
                while self.stream.read(CHUNK_SIZE):
                    pass
        except Exception:  # noqa: BLE001 - a broken body only means: close the connection
            close_after(response)
        self.pending = False


def arm_socket(request: Request, idle_timeout: float | None) -> tuple[Any, float | None]:
    """Give the client's socket (gunicorn's, when there is one) ``idle_timeout`` for this
    request's reads (or its answer's sends); return it and the timeout to restore."""
    sock = request.environ.get("gunicorn.socket")
    if idle_timeout is None or sock is None or not hasattr(sock, "settimeout"):
        return None, None
    before = sock.gettimeout()
    sock.settimeout(idle_timeout)
    return sock, before


def _form(raw: bytes) -> dict[str, Any]:
    """An urlencoded form; the first value of a repeated name counts."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise BadRequest("the form is not UTF-8", field="body") from None
    form: dict[str, Any] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def _json_object(raw: bytes, mimetype: str) -> dict[str, Any]:
    """A JSON object body (an empty body is no fields)."""
    if not raw.strip():
        return {}
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the body as application/json, not {mimetype}", field="Content-Type"
        )
    data = parse_json(raw, "body", "the body")
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object", field="body")
    return data


def read_bounded(stream: BinaryIO | Any, limit: int) -> bytes:
    """The whole (small) body, refused with 413 as soon as it passes ``limit`` bytes."""
    out = bytearray()
    while True:
        try:
            chunk = stream.read(64 * 1024)
        except ConnectorError:
            raise
        except Exception as exc:
            raise BadRequest("the request body broke off", field="body") from exc
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes", field="body")


def close_after(response: Response) -> None:
    """Answer without reading the rest of the body; a streamed body stops frameworks'
    read-everything-after-the-handler step (functions-framework's ``read_request``)."""
    response.headers["Connection"] = "close"
    data = response.get_data()
    response.response = iter([data])
    response.headers["Content-Length"] = str(len(data))
