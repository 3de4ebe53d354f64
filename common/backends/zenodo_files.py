"""Upload machinery of the Zenodo backend: bodies that can be sent again, the per-project
draft cache, per-key locks, MD5 on a helper thread, and the unknown-size spool.

Boundary: no HTTP here and no RDS route; ``common.backends.zenodo`` composes these with
``ZenodoClient``. What each piece promises:

- ``ReplayBody``: the first ``window`` bytes of a stream go to a temporary FILE as they
  pass (never to memory: one chunk in flight, the per-stream target is <= 2 MiB), so the
  client can send the body again after a 429/5xx/reset as long as no more than the window
  has been read from the source. A file that fits the window is always replayable.
- ``FileBody``: a body already whole on disk (the unknown-size spool): always replayable.
- ``DraftCache``: per (token, project) the bucket link and the bucket's listing, so a
  steady stream of uploads costs one Zenodo request per file (the PUT; its answer is the
  confirmation). Slots are reserved under a lock, so concurrent uploads to one project in
  one process never pass the 100-file cap together. Entries live ``ttl`` seconds: another
  process (a second gunicorn worker, the Zenodo web UI) may change the bucket, and Zenodo
  itself refuses what the stale view let through (its 400 becomes our 409/413).
- ``KeyLocks``: one upload of one key at a time in this process; see docs/zenodo.md for
  why a failed upload's clean-up compares size+MD5 instead of trusting the lock alone.
"""

from __future__ import annotations

import hashlib
import queue
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, cast

from common.errors import Conflict, PayloadTooLarge
from common.streams import CHUNK_SIZE, Meter, SizedMeter, Upload, iter_file

MiB = 1024 * 1024
THREADED_MD5_FROM = 4 * MiB  # smaller files: a thread costs more than it overlaps


class BackgroundMD5:
    """``hashlib.md5`` fed from a helper thread, one chunk behind the caller.

    hashlib releases the GIL on large buffers, so hashing chunk N overlaps sending it.
    At most two chunks are referenced (the one being hashed, one queued).
    """

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=1)
        self._thread: threading.Thread | None = None

    def update(self, chunk: bytes) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="md5", daemon=True)
            self._thread.start()
        self._queue.put(chunk)

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            try:
                if chunk is None:
                    return
                self._md5.update(chunk)
            finally:
                self._queue.task_done()

    def hexdigest(self) -> str:
        """The digest of everything passed so far (waits for the helper to catch up)."""
        if self._thread is not None:
            self._queue.join()
        return self._md5.hexdigest()

    def close(self) -> None:
        """Stop the helper thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class NotReplayable(Exception):
    """More than the replay window has been read from the source: it cannot be sent again."""


class ReplayBody:
    """A sized request body that can be sent again while it is within its window.

    ``requests`` iterates it once per attempt (``__len__`` makes it send Content-Length).
    """

    def __init__(self, meter: Meter, size: int, window: int) -> None:
        self.meter = meter
        self.size = size
        self.window = window
        self._source = iter(meter)
        self._spool: IO[bytes] | None = None
        self._spooled = 0
        self._pulled = 0
        self._done = False
        self.sent = 0  # bytes handed out in the current pass
        self.passes = 0
        self.broken = False  # the source itself failed: never send again

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return True

    @property
    def md5(self) -> str:
        return self.meter.md5

    def replayable(self) -> bool:
        """True while everything read from the source is still in the spool."""
        return not self.broken and self._pulled == self._spooled

    @property
    def sent_whole(self) -> bool:
        """The latest pass handed out every byte: the server may have stored the file."""
        return self._done and self.sent == self.size

    def __iter__(self) -> Iterator[bytes]:
        if self.passes and not self.replayable():
            raise NotReplayable("the body has passed its replay window")
        self.passes += 1
        self.sent = 0
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        if self._spool is not None and self._spooled:
            self._spool.seek(0)
            left = self._spooled
            while left:
                chunk = self._spool.read(min(CHUNK_SIZE, left))
                if not chunk:
                    raise OSError("the replay spool ended early")
                left -= len(chunk)
                self.sent += len(chunk)
                yield chunk
        while not self._done:
            try:
                chunk = next(self._source)
            except StopIteration:
                self._done = True
                return
            except BaseException:
                self.broken = True
                raise
            self._pulled += len(chunk)
            if self._pulled <= self.window:
                if self._spool is None:
                    self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
                self._spool.seek(0, 2)
                self._spool.write(chunk)
                self._spooled += len(chunk)
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        md5 = getattr(self.meter, "hasher", None)
        if isinstance(md5, BackgroundMD5):
            md5.close()


class FileBody:
    """A body whole in a temporary file (size and MD5 known): replayable without limit."""

    def __init__(self, spool: IO[bytes], size: int, md5: str) -> None:
        self._spool = spool
        self.size = size
        self.md5 = md5
        self.sent = 0
        self.passes = 0
        self.broken = False

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return True

    def replayable(self) -> bool:
        return True

    @property
    def sent_whole(self) -> bool:
        return self.sent == self.size

    def __iter__(self) -> Iterator[bytes]:
        self.passes += 1
        self.sent = 0
        self._spool.seek(0)
        for chunk in iter_file(cast(BinaryIO, self._spool)):
            self.sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self._spool.close()


Body = ReplayBody | FileBody


def bytes_body(data: bytes) -> FileBody:
    """A small body built here (the crate file), spooled like any other."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - FileBody closes it
    spool.write(data)
    return FileBody(spool, len(data), hashlib.md5(data, usedforsecurity=False).hexdigest())


def sized_body(upload: Upload, *, window: int, spool_limit: int, path: str) -> Body:
    """A body of known size for Zenodo: exact size, verified hint, or a bounded disk spool."""
    size = upload.size if upload.size is not None else upload.size_hint
    if size is not None:
        hasher = BackgroundMD5() if size >= THREADED_MD5_FROM else None
        meter = SizedMeter(upload.chunks, size, hasher=hasher)
        return ReplayBody(meter, size, window)
    return _spool(upload, spool_limit, path)


def _spool(upload: Upload, limit: int, path: str) -> FileBody:
    """Spool a stream of unknown size to disk, refusing it (413) once it passes ``limit``."""
    meter = Meter(upload.chunks)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - FileBody closes it
    size = 0
    try:
        for chunk in meter:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"{path!r} came without a size and passed the {limit // MiB} MiB this "
                    "connector spools for such uploads (ZENODO_SPOOL_LIMIT_MIB); send it "
                    "with a Content-Length",
                    field="file",
                    extra={"notStored": [path], "limitBytes": limit},
                )
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    return FileBody(spool, size, meter.md5)


@dataclass
class Draft:
    """What this process knows of one draft: its bucket and the bucket's objects."""

    bucket: str
    files: dict[str, tuple[int, str]]  # key -> (size, "md5:...")
    read_at: float
    pending: dict[str, int] = field(default_factory=dict)  # keys being uploaded -> size


class DraftCache:
    """Drafts by (token hash, project id), at most ``size`` of them, each ``ttl`` seconds."""

    def __init__(
        self, *, ttl: float = 60.0, size: int = 512, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._drafts: OrderedDict[tuple[str, str], Draft] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Draft | None:
        with self.lock:
            draft = self._drafts.get(key)
            if draft is None or self.clock() - draft.read_at > self.ttl:
                self._drafts.pop(key, None)
                return None
            self._drafts.move_to_end(key)
            return draft

    def put(self, key: tuple[str, str], bucket: str, objects: Iterable[dict[str, Any]]) -> Draft:
        files = {
            str(o.get("key")): (int(o.get("size") or 0), str(o.get("checksum") or ""))
            for o in objects
        }
        with self.lock:
            old = self._drafts.get(key)
            draft = Draft(bucket, files, self.clock(), dict(old.pending) if old else {})
            self._drafts[key] = draft
            self._drafts.move_to_end(key)
            while len(self._drafts) > self.size:
                self._drafts.popitem(last=False)
            return draft

    def drop(self, key: tuple[str, str]) -> None:
        with self.lock:
            self._drafts.pop(key, None)

    def reserve(
        self, draft: Draft, key: str, size: int, check: Callable[[dict[str, int]], None]
    ) -> None:
        """Hold a slot for ``key`` while it uploads; ``check`` sees every other key's size
        (confirmed or pending) and raises when the record cannot take it."""
        with self.lock:
            if key in draft.pending:
                raise Conflict(f"{key!r} is being uploaded by another request", field="file")
            others = {k: s for k, (s, _) in draft.files.items() if k != key}
            others.update({k: s for k, s in draft.pending.items() if k != key})
            check(others)
            draft.pending[key] = size

    def settle(self, draft: Draft, key: str, stored: tuple[int, str] | None) -> None:
        """Release ``key``'s slot; ``stored`` (size, checksum) when Zenodo confirmed it."""
        with self.lock:
            draft.pending.pop(key, None)
            if stored is not None:
                draft.files[key] = stored


class KeyLocks:
    """One lock per key, created on demand and dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._locks: dict[Any, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key: Any) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users <= 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)
