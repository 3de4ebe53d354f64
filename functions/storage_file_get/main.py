"""GET /storage/file: the file's bytes, streamed (``Range`` passed through)."""

import functions_framework

from common.http import Answer, Call, endpoint, stream_response
from common.paths import storage_path


@functions_framework.http
@endpoint("storage_file_get")
def storage_file_get(call: Call) -> Answer:
    """Stream ``filepath`` as application/octet-stream."""
    path = storage_path(call.field("filepath", required=True))
    who = call.identity
    return stream_response(call.storage.open_file(who, path, call.request.headers.get("Range")))
