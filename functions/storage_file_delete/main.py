"""DELETE /storage/file: delete ``filepath`` (a file, or a folder with its content)."""

import functions_framework

from common.http import Answer, Call, endpoint
from common.paths import storage_path


@functions_framework.http
@endpoint("storage_file_delete")
def storage_file_delete(call: Call) -> Answer:
    """Delete; answers ``{success: true}``."""
    call.storage.delete_file(call.identity, storage_path(call.field("filepath", required=True)))
    return {"success": True}
