"""Zenodo keys and file entries, and the guard on reading Zenodo's answers.

Boundary: pure functions of names and JSON. Zenodo's names are flat, RDS sends relative
paths: ``to_key`` escapes ``%`` as ``%25`` and then ``/`` as ``%2F``; ``from_key`` undoes
both in one pass. Escaping the escape character makes the mapping injective (``a/b`` and
``a%2Fb`` stay apart) and reversible.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from common.errors import UpstreamError

log = logging.getLogger("rds.zenodo")
Json = dict[str, Any]
_UNESCAPE = re.compile(r"%(25|2F)", re.IGNORECASE)


def to_key(path: str) -> str:
    """Flat Zenodo key for a relative path: ``%`` -> ``%25``, then ``/`` -> ``%2F``."""
    return path.replace("%", "%25").replace("/", "%2F")


def from_key(key: str) -> str:
    """The relative path of a key made by ``to_key`` (one pass, so it is exact)."""
    return _UNESCAPE.sub(lambda m: "%" if m[1] == "25" else "/", key)


def entry(path: str, size: Any, checksum: Any) -> Json:
    checksum = str(checksum or "")
    if checksum and ":" not in checksum:
        checksum = f"md5:{checksum}"
    return {"id": path, "filename": path, "size": int(size or 0), "checksum": checksum}


def bucket_entry(obj: Json) -> Json:
    return entry(from_key(str(obj.get("key", ""))), obj.get("size"), obj.get("checksum"))


def classic_entry(obj: Json) -> Json:
    return entry(from_key(str(obj.get("filename", ""))), obj.get("filesize"), obj.get("checksum"))


def md5_checksum(classic: Json) -> str:
    checksum = str(classic.get("checksum") or "")
    return checksum if not checksum or ":" in checksum else f"md5:{checksum}"


ROUTE_METHODS = (
    "list_projects",
    "create_project",
    "get_project",
    "update_project",
    "publish_project",
    "delete_project",
    "list_files",
    "store_file",
    "delete_files",
    "get_file",
    "update_file",
    "delete_file",
    "check_batch",
)


def answers_read_safely(cls: type) -> type:
    """Wrap each route method: an answer of Zenodo's that lacks a field or has one of the
    wrong type (``KeyError``, ``TypeError``, ``ValueError``, ``AttributeError`` while we read
    it) is a 502 problem, not a bare 500. Our own checks raise ``ConnectorError`` subclasses,
    which pass through unchanged."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning(
                    "zenodo.answer_unreadable method=%s error=%s",
                    method.__name__,
                    exc.__class__.__name__,
                    exc_info=True,
                )
                raise UpstreamError("Zenodo answered in a shape the connector cannot read") from exc

        wrapper.__name__ = method.__name__
        wrapper.__doc__ = method.__doc__
        return wrapper

    for name in ROUTE_METHODS:
        if hasattr(cls, name):
            setattr(cls, name, wrap(getattr(cls, name)))
    return cls
