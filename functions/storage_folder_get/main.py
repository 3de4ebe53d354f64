"""GET /storage/folder: a folder's children as absolute paths, folders ending in '/'."""

import functions_framework

from common.http import Answer, Call, endpoint
from common.paths import storage_path


@functions_framework.http
@endpoint("storage_folder_get")
def storage_folder_get(call: Call) -> Answer:
    """List ``filepath`` (not recursive); a file lists as ``[]``."""
    path = storage_path(call.field("filepath") or "/")
    return {"files": call.storage.list_folder(call.identity, path)}
