"""The ``metadata`` field of metadata requests: the whole RO-Crate, or nothing.

A dict that is no JSON-LD at all is one of the older metadata forms some RDS callers still
send (``common.legacy_metadata``): mapped to a crate, or a 400 naming what cannot be.

Only a light structural check happens here, the same for every archive backend: the value
must be an RO-Crate-shaped JSON-LD object (``@context`` and an ``@graph`` list of objects
that each have an ``@id``). What the crate *says* -- which entity is the root, whether it
names a title or creators -- is the archive backend's business (``common.rocrate``), so a
crate with no root passes here; the local backend stores it as sent. JSON cannot hold a
cycle; ``@id`` references that form one are fine here, since nothing follows them.

This module knows no request: functions hand it the request's fields, and backends may
use ``check_crate``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from common.errors import BadRequest


def parse_json(raw: str | bytes, field: str, what: str) -> Any:
    """``raw`` parsed as JSON; a 400 naming ``field`` says ``what`` is not JSON or nests too
    deeply ("[[[[..." a few hundred thousand deep fits well under any size limit)."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(f"{what} is not valid JSON", field=field) from None
    except RecursionError:
        raise BadRequest(f"{what}'s JSON is nested too deeply", field=field) from None


def check_crate(value: object, field: str = "metadata") -> dict[str, Any]:
    """``value`` if it is RO-Crate-shaped JSON-LD; a 400 naming ``field`` says what is not."""
    if not isinstance(value, dict):
        raise BadRequest(f"{field} must be a JSON object (the RO-Crate)", field=field)
    if "@context" not in value:
        raise BadRequest(f"{field} is not JSON-LD: it has no @context", field=field)
    graph = value.get("@graph")
    if not isinstance(graph, list):
        raise BadRequest(f"{field} is not an RO-Crate: @graph must be a list", field=field)
    for entity in graph:
        if not isinstance(entity, dict) or not isinstance(entity.get("@id"), str):
            raise BadRequest(
                f"{field} is not an RO-Crate: every @graph entry needs an @id", field=field
            )
    return value


def metadata_field(fields: Mapping[str, Any]) -> dict[str, Any] | None:
    """``fields["metadata"]`` as an RO-Crate (a JSON string holding one is accepted), or
    ``None``.

    ``null``, ``""`` and ``{}`` (upstream's example sends an empty object) mean "none".
    """
    value = fields.get("metadata")
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        value = parse_json(value, "metadata", "metadata")
    if isinstance(value, dict) and "@context" not in value and "@graph" not in value:
        # an older metadata dict; its mapping (and the crate code) loads only when one comes,
        # so a function that never reads metadata does not import it at cold start
        from common.legacy_metadata import crate_from_legacy

        return crate_from_legacy(value)
    return check_crate(value)


MAX_IDEMPOTENCY_KEY = 255


def idempotency_key(headers: Mapping[str, str] | Any) -> str | None:
    """The caller's ``Idempotency-Key`` header (printable ASCII, at most 255), or None."""
    value = headers.get("Idempotency-Key")
    if value is None or value == "":
        return None
    if len(value) > MAX_IDEMPOTENCY_KEY or not value.isascii() or not value.isprintable():
        raise BadRequest(
            f"Idempotency-Key must be printable ASCII of at most {MAX_IDEMPOTENCY_KEY} characters",
            field="Idempotency-Key",
        )
    return value
