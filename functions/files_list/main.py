"""GET /metadata/project/{id}/files: the project's files."""

import functions_framework

from common.http import Answer, Call, endpoint


@functions_framework.http
@endpoint("files_list")
def files_list(call: Call) -> Answer:
    """List ``[{id, filename, size, checksum}]``."""
    return call.archive.list_files(call.identity, call.params["project_id"])
