"""DELETE /metadata/project/{id}/files: remove every file of the project."""

import functions_framework

from common.http import Answer, Call, endpoint


@functions_framework.http
@endpoint("files_delete")
def files_delete(call: Call) -> Answer:
    """Delete all files; answers ``{success: true}``."""
    call.archive.delete_files(call.identity, call.params["project_id"])
    return {"success": True}
