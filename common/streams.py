"""Bytes as iterators of chunks, and the wrappers that see every chunk on the way.

Nothing here holds more than one chunk: a file moves from its source (the request body,
another storage) to its sink (disk, a bucket PUT) as an iterator, and ``Meter`` counts
and hashes it in passing so a backend can compare its MD5 with the remote's checksum.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from common.errors import BadRequest

# 64 KiB: a stream holds a few chunks at a time (socket read, parser buffer, the chunk on
# its way), so this is what each concurrent transfer costs (docs/benchmarks.md, "Parallel
# uploads").
CHUNK_SIZE = 64 * 1024


class Hasher(Protocol):
    """What ``Meter`` needs of a hash: ``hashlib.md5()`` or one fed from a helper thread."""

    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def iter_file(fileobj: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Read ``fileobj`` to its end in chunks."""
    while True:
        chunk = fileobj.read(chunk_size)
        if not chunk:
            return
        yield chunk


class EndedEarly(BadRequest):
    """A stream ended before the size it announced (or that was derived for it)."""


class Meter:
    """Iterate ``chunks`` once, counting bytes and computing MD5 on the way.

    With ``expected`` set, the stream is refused (``BadRequest``) as soon as it runs past
    that size, or at its end when it falls short, so a sink that announced the size (a
    ``Content-Length``) never completes a body of the wrong length.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        expected: int | None = None,
        field: str = "file",
        *,
        hasher: Hasher | None = None,
    ):
        self._chunks = chunks
        self.expected = expected
        self.field = field
        self.size = 0
        # an injected hasher (``update``/``hexdigest``) may hash on a helper thread
        self.hasher: Hasher = hasher or hashlib.md5(usedforsecurity=False)

    def __iter__(self) -> Iterator[bytes]:
        source = iter(self._chunks)
        for chunk in source:
            if not chunk:
                continue
            self.size += len(chunk)
            if self.expected is not None and self.size > self.expected:
                raise self._longer()
            # At the announced size, hold the last chunk back until the source proves it has
            # ended: a sink that announced the size would otherwise receive a complete body
            # of a stream that really was longer (a wrong size hint), and keep a cut file.
            if self.size == self.expected and any(extra for extra in source):
                raise self._longer()
            self.hasher.update(chunk)
            yield chunk
        if self.expected is not None and self.size != self.expected:
            raise EndedEarly(
                f"{self.field} ended after {self.size} of its announced {self.expected} bytes",
                field=self.field,
            )

    def _longer(self) -> BadRequest:
        return BadRequest(
            f"{self.field} is longer than its announced {self.expected} bytes", field=self.field
        )

    def __bool__(self) -> bool:
        """Always true: ``requests`` tests a body for truth, and an empty stream is a body."""
        return True

    @property
    def md5(self) -> str:
        """Hex MD5 of what has passed so far (the whole stream once iterated)."""
        return self.hasher.hexdigest()


class SizedMeter(Meter):
    """A ``Meter`` whose size is announced: ``len()`` lets ``requests`` send Content-Length.

    A separate class because ``requests`` calls ``len()`` on any body that has ``__len__``;
    a stream of unknown size must not have one (it goes out chunked instead).
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        expected: int,
        field: str = "file",
        *,
        hasher: Hasher | None = None,
    ):
        super().__init__(chunks, expected, field, hasher=hasher)

    def __len__(self) -> int:
        return int(self.expected or 0)


@dataclass
class Upload:
    """One file on its way in: its relative path, its chunks and, when known, its size.

    ``size`` is exact when given: a sink may announce it, and iterating ``meter()`` refuses
    a stream of any other length.
    """

    filename: str
    chunks: Iterable[bytes] = field(repr=False)
    size: int | None = None
    content_type: str = "application/octet-stream"
    #: the size if this is the body's last part (how RDS sends files); unverified until
    #: the stream ends, so a sink that announces it must iterate ``meter(hinted=True)``
    size_hint: int | None = None

    def meter(self, *, hinted: bool = False) -> Meter:
        """A ``Meter`` over the chunks enforcing ``size`` (or, if ``hinted``, the hint)."""
        expected = self.size if self.size is not None or not hinted else self.size_hint
        if expected is None:
            return Meter(self.chunks)
        return SizedMeter(self.chunks, expected)


@dataclass
class Download:
    """One file on its way out: chunks plus what the HTTP answer must say about them."""

    chunks: Iterable[bytes] = field(repr=False)
    size: int | None = None
    content_type: str = "application/octet-stream"
    status: int = 200
    content_range: str | None = None
    filename: str | None = None
    close: Callable[[], object] | None = None  # releases the source when the answer ends


class WatchedBody:
    """An answer's body that reports once, at its last byte or at its close (broken off,
    never read as for HEAD, or the client gone): ``on_end(sent, complete)``. The server
    calls ``close`` in every case (WSGI), so the report always comes."""

    def __init__(self, body: Iterable[bytes], on_end: Callable[[int, bool], None]) -> None:
        self.body, self.on_end = body, on_end
        self.sent = 0
        self.complete = False
        self.ended = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.sent += len(chunk)
            yield chunk
        self.complete = True
        self.close()

    def close(self) -> None:
        if self.ended:
            return
        self.ended = True
        close = getattr(self.body, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self.on_end(self.sent, self.complete)


def watch_answer(response: Any, on_end: Callable[[int, bool], None]) -> Any:
    """Wrap a Flask/werkzeug response's body in a ``WatchedBody``; answers the response."""
    response.response = WatchedBody(response.response, on_end)
    return response
