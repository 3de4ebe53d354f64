"""Files into a project or a storage: active mode (multipart) and passive mode (pull)."""

from __future__ import annotations

from typing import Any

from common.errors import PROBLEM_CONTENT_TYPE, problem_body
from common.http import Call, json_response
from common.passive import pull_folder
from common.paths import relative_path, storage_path
from common.uploads import receive


def add_files(call: Call) -> Any:
    """``POST .../files``: multipart uploads; a plain form with ``folder`` asks for a pull."""
    project_id = call.params["project_id"]
    if not call.is_multipart and call.fields.get("folder"):
        body, status = pull_folder(call.runtime, call.identity, project_id, call.fields)
        if status == 200:
            return body
        problem = problem_body(
            status,
            "Some files did not make it",
            f"{len(body['failed'])} of "
            f"{len(body['files'])} files failed: {', '.join(body['failed'][:20])}",
            slug="transfer-incomplete",
            field="folder",
            instance=call.request.path,
            extra=body,
        )
        return json_response(problem, status, PROBLEM_CONTENT_TYPE)

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
