"""Validation of the paths callers send (``filename``, ``filepath``, file ids).

Every backend keys files by a relative POSIX path. A path that could escape the user's
root on any backend (``..``, absolute, NUL, backslashes, drive letters, control
characters) or that no file system would store (over-long names) is a 400 that names the
field, before any backend sees it.
"""

from __future__ import annotations

import re

from common.errors import BadRequest

MAX_PATH = 4095
MAX_COMPONENT = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def relative_path(value: object, field: str, *, allow_root: bool = False) -> str:
    """Validate a relative path (``a/b.csv``); returns it unchanged (``''`` for the root)."""
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string", field=field)
    if value == "" and allow_root:
        return ""
    if value == "":
        raise BadRequest(f"{field} is empty", field=field)
    if len(value.encode("utf-8", "surrogatepass")) > MAX_PATH:
        raise BadRequest(f"{field} is longer than {MAX_PATH} bytes", field=field)
    if "\x00" in value or _CONTROL.search(value):
        raise BadRequest(f"{field} contains a control character", field=field)
    if "\\" in value:
        raise BadRequest(f"{field} contains a backslash", field=field)
    if value.startswith("/") or _DRIVE.match(value):
        raise BadRequest(f"{field} must be a relative path", field=field)
    parts = value.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise BadRequest(f"{field} has an empty, '.' or '..' segment", field=field)
        if len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT:
            raise BadRequest(f"{field} has a segment over {MAX_COMPONENT} bytes", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{field} is not valid text", field=field) from None
    return value


def archive_name(value: object, field: str = "filename") -> str:
    """A file's name in a project: relative, ``/`` keeps folders; a leading ``/`` is dropped.

    The Exporter passes each storage listing entry on unchanged as ``filename``; a storage
    that lists absolute paths (the interface document's form) would otherwise have every
    file refused. Dropping the slash cannot climb anywhere: the rest is checked as usual.
    """
    if isinstance(value, str) and value.startswith("/"):
        value = value.lstrip("/")
    return relative_path(value, field)


def storage_path(value: object, field: str = "filepath") -> str:
    """Validate an absolute storage path (``/a/b.csv``, ``/a/`` or ``/``); returns it relative.

    The fileStorage interface speaks absolute paths; a missing leading slash is tolerated
    (callers differ), a trailing slash is dropped, and ``/`` is the user's root (``''``).
    """
    if value in (None, ""):
        raise BadRequest(f"{field} is missing", field=field)
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be a string", field=field)
    inner = value[1:] if value.startswith("/") else value
    if inner.endswith("/"):
        inner = inner[:-1]
    return relative_path(inner, field, allow_root=True)
