"""POST /storage/file: store the multipart file part at ``filepath``."""

import functions_framework

from common.http import Answer, Call, endpoint
from common.transfer import put_storage_file


@functions_framework.http
@endpoint("storage_file_post")
def storage_file_post(call: Call) -> Answer:
    """Store the upload; answers ``{success, files}``."""
    return put_storage_file(call)
