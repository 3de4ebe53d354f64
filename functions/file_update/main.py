"""PATCH /metadata/project/{id}/files/{file-id}: rename a file (``filename`` in the body)."""

import functions_framework

from common.http import Answer, Call, endpoint


@functions_framework.http
@endpoint("file_update")
def file_update(call: Call) -> Answer:
    """Apply the body's changes to one file; answers its new entry."""
    p = call.params
    return call.archive.update_file(call.identity, p["project_id"], p["file_id"], call.fields)
