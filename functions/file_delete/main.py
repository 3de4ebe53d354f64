"""DELETE /metadata/project/{id}/files/{file-id}: remove one file."""

import functions_framework

from common.http import Answer, Call, endpoint


@functions_framework.http
@endpoint("file_delete")
def file_delete(call: Call) -> Answer:
    """Delete one file; answers ``{success: true}``."""
    call.archive.delete_file(call.identity, call.params["project_id"], call.params["file_id"])
    return {"success": True}
