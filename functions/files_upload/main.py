"""POST /metadata/project/{id}/files: add files (active mode: multipart, streamed)."""

import functions_framework

from common.http import Answer, Call, endpoint
from common.transfer import add_files


@functions_framework.http
@endpoint("files_upload")
def files_upload(call: Call) -> Answer:
    """Store the file part(s) under ``filename``; answers ``{success, files}``."""
    return add_files(call)
