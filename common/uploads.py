"""Files arriving in a multipart body (active mode): each file part becomes an ``Upload``.

RDS sends the form fields first and ONE file part named ``file`` (the yml says ``files``;
both are accepted), so the part streams straight to the backend. No file byte is read,
stored or spooled before the caller is known: a file part that comes before ``userId``
is a 400 asking for the fields first, and its bytes are only skipped (or the connection
closed, ``common/body.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.errors import BadRequest, ConnectorError
from common.http import Call
from common.streams import EndedEarly, Upload

FILE_FIELDS = ("file", "files")


def _store(store: Callable[[Upload], dict[str, Any]], upload: Upload) -> dict[str, Any]:
    """``store(upload)``; a failure names the file that did not make it (``notStored``)."""
    try:
        return store(upload)
    except EndedEarly as exc:
        if upload.size_hint is None:
            raise
        # the hint is the exact size only when the part is the body's last: this one was not
        raise BadRequest(
            f"{upload.filename!r} was not the last part of the body, and this backend needs "
            "each file's exact size before it sends a byte: send one file part per request "
            "(as RDS does)",
            field="file",
            extra={"notStored": [upload.filename]},
        ) from exc
    except ConnectorError as exc:
        exc.extra.setdefault("notStored", [upload.filename])
        exc.field = exc.field or "file"
        raise


def receive(
    call: Call, name_field: str, store: Callable[[Upload], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Store every file part of the body with ``store``; the first is named by ``name_field``."""
    if not call.is_multipart:
        raise BadRequest(
            "send the file as multipart/form-data with a part named 'file'", field="file"
        )
    stored: list[dict[str, Any]] = []
    try:
        _receive_parts(call, name_field, store, stored)
    except ConnectorError as exc:
        # the per-file report: what this request stored before the failure, what it did not
        failed = exc.extra.get("notStored", [])
        exc.extra.setdefault(
            "files",
            [{**s, "status": "stored"} for s in stored]
            + [{"filename": name, "status": "failed", "error": exc.detail} for name in failed],
        )
        raise
    return stored


def _receive_parts(
    call: Call,
    name_field: str,
    store: Callable[[Upload], dict[str, Any]],
    stored: list[dict[str, Any]],
) -> None:
    parts = call.body.files()
    part = next(parts, None)
    if part is None:
        raise BadRequest("the body has no file part named 'file'", field="file")
    first = True
    while part is not None:
        if part.name not in FILE_FIELDS:
            raise BadRequest(f"unexpected file part {part.name!r}; name it 'file'", field=part.name)
        if first and "userId" not in call.fields:
            raise BadRequest(
                f"send the form fields (userId, {name_field}) before the file part", field="file"
            )
        upload = Upload(
            part.filename,
            part.chunks,
            content_type=part.content_type,
            size_hint=part.size_hint,
        )
        call.identity  # noqa: B018 - a bad userId fails before any byte is stored
        if first:
            upload.filename = call.field(name_field) or upload.filename
        if not upload.filename:
            raise BadRequest(f"{name_field} is missing", field=name_field)
        stored.append(_store(store, upload))
        first = False
        part = next(parts, None)
