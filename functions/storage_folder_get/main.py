"""GET /storage/folder: every file below a folder, relative to it (what RDS callers read)."""

import functions_framework

from common.backends.base import check_listing_size
from common.http import Answer, Call, endpoint
from common.paths import storage_path


@functions_framework.http
@endpoint("storage_folder_get")
def storage_folder_get(call: Call) -> Answer:
    """``{"files": [...]}``: recursive, relative, files only, as port_owncloud answers and the
    Exporter needs; ``recursive: false`` gives the interface document's form instead
    (children as absolute paths, folders ending in '/'). A file lists as ``[]``."""
    path = storage_path(call.field("filepath") or "/")
    if not call.flag("recursive", default=True):
        children = call.storage.list_folder(call.identity, path)
        check_listing_size(len(children), call.settings.max_listing)
        return {"files": children}
    return {"files": call.storage.list_files(call.identity, path, call.settings.max_listing)}
