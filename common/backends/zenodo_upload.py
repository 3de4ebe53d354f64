"""Writes to Zenodo that must happen once: one file into a bucket, one draft per create.
Nothing lost and nothing false.

Boundary: a ``ZenodoClient`` and what to write in; what Zenodo confirmed out, or a
``common.errors`` problem naming the file or field. The draft cache and the per-key lock
are the caller's (``common.backends.zenodo``), and so are the limits' numbers.

- The PUT's answer is the confirmation: its ``size`` and ``checksum`` must be ours.
- A lost answer (timeout, reset after the whole body went, a 5xx, an unreadable body) is
  reconciled with what Zenodo holds: the bucket is read again (a few times, with back-off:
  Zenodo may still be storing) and the right size and MD5 under the key mean success.
- Clean-up owns only what this request is known to have written: after an answer that
  confirms a DAMAGED copy, the key is deleted only if the bucket still holds that very
  object (same version id, else same size and checksum). A failure without such an answer
  deletes nothing: the key may hold a copy another request confirmed (issue 13). Size+MD5
  comparison rather than a lock alone because a lock cannot span gunicorn workers or other
  Zenodo clients; the per-key lock (one process) only narrows the window further.
- A create whose answer is lost or unreadable looks for its tag (``zenodo_crate.tagged``)
  among the newest drafts before it is sent again, so Zenodo never gets a second draft
  for one create; a caller's ``Idempotency-Key`` becomes the tag, so its retry finds the
  first draft too, from any worker.
- Beyond the replay window a failure cannot be retried here: a 503 with ``Retry-After``
  names the file, so the caller sends it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from common.backends.zenodo_crate import tag_of
from common.backends.zenodo_files import Body, MiB
from common.backends.zenodo_keys import from_key
from common.errors import (
    Conflict,
    ConnectorError,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    UnprocessableContent,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from common.zenodo_client import ZenodoClient

log = logging.getLogger("rds.zenodo")
Json = dict[str, Any]
RECONCILE_READS = 3
_LOST = (UpstreamUnavailable, UpstreamTimeout, UpstreamError, TooManyRequests)


def check_limits(
    path: str,
    key: str,
    size: int,
    others: dict[str, int],
    *,
    crate_key: str,
    max_files: int,
    max_bytes: int,
) -> None:
    """Zenodo's per-record limits, refused before a byte is sent; one slot stays free for
    the record's crate (``crate_key``) when it is not there yet."""
    if size == 0:
        raise UnprocessableContent(
            f"{path!r} is empty and Zenodo refuses empty files; it was not uploaded",
            field="file",
            extra={"notStored": [path]},
        )
    room = max_files if crate_key in others or key == crate_key else max_files - 1
    if len(others) + 1 > room:
        raise Conflict(
            f"the Zenodo record holds {len(others)} files and allows {max_files}, one of "
            f"them kept for its {crate_key}: {path!r} was not uploaded; to send more, let "
            "the connector pull the folder (passive transfer, fileTransferMode 1: it zips "
            "subfolders to fit) or send folders as zip files (fileTransferArchive 1)",
            field="file",
            extra={"notStored": [path]},
        )
    if sum(others.values()) + size > max_bytes:
        raise PayloadTooLarge(
            f"{path!r} would take the record past Zenodo's 50 GB; it was not uploaded",
            field="file",
            extra={"notStored": [path]},
        )


def put_file(
    zc: ZenodoClient,
    bucket: str,
    key: str,
    path: str,
    body: Body,
    *,
    sleep: Callable[[float], None],
) -> tuple[int, str]:
    """PUT ``body`` under ``key``; (size, checksum) as Zenodo confirmed them."""
    try:
        answer = zc.put_object(bucket, key, body, body.size)
    except _LOST as exc:
        if body.sent_whole and not body.broken:
            found = reconcile(zc, bucket, key, body.size, body.md5, sleep=sleep)
            if found is not None:
                log.info("zenodo.upload.reconciled key_bytes=%d size=%d", len(key), body.size)
                return found
        if not body.replayable():
            wait = str(int(zc.max_wait) or 1)
            raise UpstreamUnavailable(
                f"{path!r} was not stored: Zenodo failed ({exc.detail}) after more than the "
                f"{body_window(body)} MiB replay window had been read, so it could not be "
                "sent again; send this file again",
                field="file",
                headers={"Retry-After": exc.headers.get("Retry-After", wait)},
                extra={"notStored": [path]},
            ) from exc
        exc.field = exc.field or "file"
        raise
    remote = str(answer.get("checksum") or "")
    size = int(answer.get("size") or -1)
    if remote != f"md5:{body.md5}" or size != body.size:
        discard_own(zc, bucket, key, answer)
        raise UpstreamError(
            f"{path!r} arrived damaged at Zenodo (checksum {remote or 'missing'}, "
            f"sent md5:{body.md5}); the damaged copy was deleted",
            field="file",
            extra={"notStored": [path]},
        )
    return size, remote


def body_window(body: Body) -> int:
    return int(getattr(body, "window", body.size)) // MiB


def reconcile(
    zc: ZenodoClient,
    bucket: str,
    key: str,
    size: int,
    md5: str,
    *,
    sleep: Callable[[float], None],
    reads: int = RECONCILE_READS,
) -> tuple[int, str] | None:
    """(size, checksum) if the bucket holds ``key`` with our size and MD5 within ``reads``
    reads (back-off between them: a store may land after its answer was lost)."""
    wanted = {"size": size, "checksum": f"md5:{md5}"}
    for attempt in range(1, reads + 1):
        try:
            objects = zc.list_bucket(bucket)
        except ConnectorError:
            objects = []
        for obj in objects:
            if str(obj.get("key")) == key and same_object(obj, wanted):
                return size, f"md5:{md5}"
        if attempt < reads:
            sleep(zc.policy.delay(attempt))
    return None


def discard_own(zc: ZenodoClient, bucket: str, key: str, answer: Json) -> None:
    """Delete ``key`` only while it is still the object ``answer`` described."""
    try:
        current = next((o for o in zc.list_bucket(bucket) if str(o.get("key")) == key), None)
    except ConnectorError:
        current = None
    if current is None or not same_object(current, answer):
        log.warning("zenodo.upload.discard_skipped key_bytes=%d reason=replaced", len(key))
        return
    try:
        zc.delete_object(bucket, key)
    except NotFound:
        return  # gone already
    except ConnectorError:  # the 502 of the caller says what happened; a leftover is logged
        log.error("zenodo.upload.discard_failed key_bytes=%d", len(key))


def same_object(a: Json, b: Json) -> bool:
    """One stored object: same version id when both say, else same size and checksum."""
    if a.get("version_id") and b.get("version_id"):
        return bool(a["version_id"] == b["version_id"])
    return (a.get("size"), a.get("checksum")) == (b.get("size"), b.get("checksum"))


def check_batch_limits(
    present: dict[str, int],
    batch: dict[str, int | None],
    *,
    crate_key: str,
    max_files: int,
    max_bytes: int,
) -> None:
    """A whole batch (key -> size or None) against the record's limits, before any byte."""
    new = [from_key(k) for k in batch if k not in present]
    room = max_files if crate_key in present or crate_key in batch else max_files - 1
    if len(present) + len(new) > room:
        raise Conflict(
            f"the Zenodo record holds {len(present)} files and this transfer adds "
            f"{len(new)} more; Zenodo allows {max_files} per record, one of them kept for "
            f"its {crate_key}, so nothing was transferred (zip folders to send more)",
            field="folder",
            extra={"notStored": sorted(from_key(k) for k in batch)},
        )
    kept = sum(s for k, s in present.items() if k not in batch)
    known = sum(s or 0 for s in batch.values())
    if kept + known > max_bytes:
        raise PayloadTooLarge(
            f"the transfer would take the Zenodo record to {kept + known} bytes, past "
            "Zenodo's 50 GB; nothing was transferred",
            field="folder",
            extra={"notStored": sorted(from_key(k) for k in batch)},
        )


def find_tagged(zc: ZenodoClient, tag: str) -> Json | None:
    """The newest draft carrying ``tag`` (among the newest 100 drafts)."""
    for dep in zc.list_depositions(status="draft", pages=1):
        if not dep.get("submitted") and tag_of(dep.get("metadata")) == tag:
            return dep
    return None


def create_once(
    zc: ZenodoClient, metadata: Json, tag: str, *, sleep: Callable[[float], None]
) -> Json:
    """POST the tagged draft; after a lost or unreadable answer, look for the tag before
    sending again, so a create that did happen is found instead of repeated."""
    failure: ConnectorError | None = None
    for attempt in range(1, zc.attempts + 1):
        try:
            return zc.create_deposition(metadata)
        except (UpstreamUnavailable, UpstreamTimeout, UpstreamError) as exc:
            failure = exc
        sleep(zc.policy.delay(attempt))
        found = find_tagged(zc, tag)
        if found is not None:
            log.info("zenodo.project.create_reconciled id=%s", found.get("id"))
            return found
    assert failure is not None
    raise failure
