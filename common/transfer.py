"""Files into a project or a storage: active mode (multipart) and passive mode (pull)."""

from __future__ import annotations

from typing import Any

from common.errors import NotImplementedHere
from common.http import Call
from common.paths import relative_path, storage_path
from common.uploads import receive


def add_files(call: Call) -> dict[str, Any]:
    """``POST .../files``: multipart uploads; a plain form with ``folder`` asks for a pull."""
    project_id = call.params["project_id"]
    if not call.is_multipart and call.fields.get("folder"):
        raise NotImplementedHere(
            "passive transfer (folder=...) is not available in this version", field="folder"
        )

    def store(upload: Any) -> dict[str, Any]:
        upload.filename = relative_path(upload.filename, "filename")
        return call.archive.store_file(call.identity, project_id, upload)

    return {"success": True, "files": receive(call, "filename", store)}


def put_storage_file(call: Call) -> dict[str, Any]:
    """``POST /storage/file``: the multipart file part stored at ``filepath``."""

    def store(upload: Any) -> dict[str, Any]:
        path = storage_path(upload.filename, "filepath")
        return call.storage.store_file(call.identity, path, upload)

    return {"success": True, "files": receive(call, "filepath", store)}
