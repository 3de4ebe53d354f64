"""GET /metadata/project/{id}/files/{file-id}: one file's entry."""

import functions_framework

from common.http import Answer, Call, endpoint


@functions_framework.http
@endpoint("file_get")
def file_get(call: Call) -> Answer:
    """Read ``{id, filename, size, checksum}`` of one file."""
    return call.archive.get_file(call.identity, call.params["project_id"], call.params["file_id"])
