"""A pull parser for ``multipart/form-data`` that streams file parts and knows offsets.

Why our own and not werkzeug's form parser: werkzeug spools every file part to a
temporary file before the handler runs, so a file would cross the disk before it reaches
the archive, and it cannot tell where a part starts in the body. This parser hands out a
file part as an iterator of chunks while the request is still arriving, and it tracks byte
offsets, so the size of a final file part follows exactly from the request's
``Content-Length`` (``size_hint``) -- what lets a backend send a ``Content-Length`` that
Zenodo demands without spooling. ``Meter`` verifies that size when the part ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from werkzeug.http import parse_options_header

from common.errors import BadRequest, ConnectorError, PayloadTooLarge
from common.streams import CHUNK_SIZE

MAX_HEADER_BLOCK = 16 * 1024
MAX_FIELD_BYTES = 1024 * 1024
MAX_PARTS = 1000


class Readable(Protocol):
    """What the reader reads from: a request body stream, a file."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass
class Part:
    """One part: its form name, its filename (file parts) and its headers."""

    name: str
    filename: str | None
    content_type: str
    size_hint: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_file(self) -> bool:
        return self.filename is not None


class MultipartReader:
    """Read parts one after another from ``stream``; data of a part is pulled as chunks."""

    def __init__(
        self,
        stream: Readable,
        boundary: str,
        content_length: int | None,
        *,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        if not boundary or len(boundary) > 200:
            raise BadRequest("multipart boundary is missing or too long", field="Content-Type")
        self._stream = stream
        self._boundary = boundary.encode("latin-1")
        self._delim = b"\r\n--" + self._boundary
        self._close_len = len(self._delim) + 4  # "\r\n--B" + "--\r\n"
        self._length = content_length
        self._chunk = chunk_size
        self._buf = bytearray()
        self._pos = 0  # body offset of self._buf[0]
        self._eof = False
        self._state = "start"  # start | headers | data | done
        self._at_data_start = False
        self._in_file = False  # the current part is a file part
        self._parts = 0

    @property
    def consumed(self) -> int:
        """Bytes of the body read from the stream so far (parsed or buffered)."""
        return self._pos + len(self._buf)

    # -- low level -------------------------------------------------------------------
    def _fill(self) -> bool:
        if self._eof:
            return False
        try:
            data = self._stream.read(self._chunk)
        except ConnectorError as exc:  # worded by the stream (common/body.py's BodyStream)
            if self._state == "data" and self._in_file:
                exc.field = "file"
            raise
        except Exception as exc:
            raise BadRequest("the request body broke off", field="body") from exc
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def _consume(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self._pos += n
        return out

    def _need(self, n: int) -> None:
        while len(self._buf) < n:
            if not self._fill():
                raise BadRequest("multipart body ends too early", field="body")

    # -- parts ----------------------------------------------------------------------
    def _start(self) -> None:
        opener = b"--" + self._boundary
        self._need(len(opener))
        if self._buf.startswith(opener):
            self._consume(len(opener))
        else:  # a preamble precedes the first boundary
            while (idx := self._buf.find(self._delim)) < 0:
                if len(self._buf) > MAX_HEADER_BLOCK or not self._fill():
                    raise BadRequest("multipart body has no opening boundary", field="body")
            self._consume(idx + len(self._delim))
        self._after_delimiter()

    def _after_delimiter(self) -> None:
        self._need(2)
        tail = bytes(self._buf[:2])
        if tail == b"--":
            self._consume(2)
            self._state = "done"
            self._drain()
        elif tail == b"\r\n":
            self._consume(2)
            self._state = "headers"
        else:
            raise BadRequest("multipart boundary is followed by garbage", field="body")

    def _drain(self) -> None:
        self._buf.clear()
        while self._fill():
            self._buf.clear()

    def next_part(self) -> Part | None:
        """Advance to the next part (skipping unread data); ``None`` after the last."""
        if self._state == "start":
            self._start()
        if self._state == "data":
            for _ in self.iter_data():
                pass
        if self._state == "done":
            return None
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise PayloadTooLarge(f"more than {MAX_PARTS} multipart parts", field="body")
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > MAX_HEADER_BLOCK:
                raise BadRequest("multipart part headers are too long", field="body")
            if not self._fill():
                raise BadRequest("multipart body ends inside part headers", field="body")
        if end > MAX_HEADER_BLOCK:
            raise BadRequest("multipart part headers are too long", field="body")
        raw = self._consume(end + 4)[:-4]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("multipart part headers are not UTF-8", field="body") from None
        headers: dict[str, str] = {}
        for line in text.split("\r\n"):
            if not line:
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise BadRequest("multipart part has a malformed header line", field="body")
            headers[key.strip().lower()] = value.strip()
        disposition, opts = parse_options_header(headers.get("content-disposition", ""))
        if disposition != "form-data" or not opts.get("name"):
            raise BadRequest(
                "multipart part lacks Content-Disposition: form-data; name=", field="body"
            )
        self._state = "data"
        self._at_data_start = True
        self._in_file = "filename" in opts
        size_hint = None
        if self._length is not None:
            size_hint = self._length - self._pos - self._close_len
            if size_hint < 0:
                size_hint = None
        return Part(
            name=opts["name"],
            filename=opts.get("filename"),
            content_type=headers.get("content-type", "application/octet-stream"),
            size_hint=size_hint if "filename" in opts else None,
            headers=headers,
        )

    def iter_data(self) -> Iterator[bytes]:
        """The current part's data as chunks, ending at the next boundary."""
        if self._state != "data":
            return
        delim = self._delim
        keep = len(delim) - 1
        if self._at_data_start:
            # Some encoders (werkzeug's test client) let an empty part's data share its CRLF
            # with the header block: "...\r\n\r\n--B". Read that as an empty part.
            self._at_data_start = False
            opener = b"--" + self._boundary
            while len(self._buf) < len(opener) and self._fill():
                pass
            if self._buf.startswith(opener):
                self._consume(len(opener))
                self._after_delimiter()
                return
        while True:
            idx = self._buf.find(delim)
            if idx >= 0:
                if idx:
                    yield self._consume(idx)
                self._consume(len(delim))
                self._after_delimiter()
                return
            if len(self._buf) > keep:
                yield self._consume(len(self._buf) - keep)
            if not self._fill():
                self._state = "done"
                raise BadRequest("multipart body ends inside a part", field="body")

    def read_value(self, limit: int = MAX_FIELD_BYTES) -> str:
        """The current (text) part's whole value, refused above ``limit`` bytes."""
        out = bytearray()
        for chunk in self.iter_data():
            out += chunk
            if len(out) > limit:
                raise PayloadTooLarge(f"a form field is over {limit} bytes", field="body")
        try:
            return out.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("a form field is not UTF-8 text", field="body") from None

    def finish(self) -> None:
        """Skip whatever is left of the body (data is discarded chunk by chunk)."""
        if self._state == "start":
            self._drain()
            self._state = "done"
            return
        while self.next_part() is not None:
            pass
