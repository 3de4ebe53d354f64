"""The ``metadata`` field of metadata requests: the whole RO-Crate, or nothing."""

from __future__ import annotations

import json
from typing import Any

from common.errors import BadRequest
from common.http import Call


def metadata_field(call: Call) -> dict[str, Any] | None:
    """``metadata`` as a JSON object (a JSON string holding one is accepted), or ``None``."""
    value = call.fields.get("metadata")
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise BadRequest("metadata is not JSON", field="metadata") from None
    if not isinstance(value, dict):
        raise BadRequest("metadata must be a JSON object (the RO-Crate)", field="metadata")
    return value
