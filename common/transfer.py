"""Files into a project or a storage: active mode (multipart) and passive mode (pull).

Passive mode's module (``requests``, zip streaming) is imported by the request that asks
for a pull: an active upload, the Exporter's way, never loads it (a shorter cold start).
"""

from __future__ import annotations

from typing import Any

from common.http import Call
from common.paths import archive_name, storage_path
from common.streams import Upload
from common.uploads import receive


def add_files(call: Call) -> Any:
    """``POST .../files``: multipart uploads; a plain form with ``folder`` asks for a pull."""
    project_id = call.params["project_id"]
    if not call.is_multipart and ("folder" in call.fields or "service" in call.fields):
        from common.passive import pull_folder

        return pull_folder(call.runtime, call.archive, call.identity, project_id, call.fields)

    def store(upload: Upload) -> dict[str, Any]:
        upload.filename = archive_name(upload.filename, "filename")
        return call.archive.store_file(call.identity, project_id, upload)

    return {"success": True, "files": receive(call, "filename", store)}


def put_storage_file(call: Call) -> dict[str, Any]:
    """``POST /storage/file``: the multipart file part stored at ``filepath``."""

    def store(upload: Upload) -> dict[str, Any]:
        path = storage_path(upload.filename, "filepath")
        return call.storage.store_file(call.identity, path, upload)

    return {"success": True, "files": receive(call, "filepath", store)}
