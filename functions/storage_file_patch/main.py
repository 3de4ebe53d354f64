"""PATCH /storage/file: rename or move ``filepath`` to ``newfilepath``."""

import functions_framework

from common.http import Answer, Call, endpoint
from common.paths import storage_path


@functions_framework.http
@endpoint("storage_file_patch")
def storage_file_patch(call: Call) -> Answer:
    """Move a file or folder; answers its new path."""
    path = storage_path(call.field("filepath", required=True))
    new = storage_path(call.field("newfilepath", required=True), "newfilepath")
    return {"success": True, **call.storage.move_file(call.identity, path, new)}
