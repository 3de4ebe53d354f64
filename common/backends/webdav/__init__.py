"""The ``webdav`` backend: ``client`` speaks WebDAV to one EFSS server, ``storage`` is the
fileStorage interface on it. The names the rest of the code uses are re-exported here."""

from common.backends.webdav.client import (
    ATTEMPTS,
    MAX_WAIT,
    RETRIED,
    UploadBody,
    WebDAVClient,
    parse_multistatus,
    raise_for,
)
from common.backends.webdav.storage import (
    AUTH_MODES,
    SYSTEMS,
    USER_ID_MODES,
    WEBDAV_ICON,
    WebDAVStorage,
    efss_user,
)

__all__ = [
    "ATTEMPTS",
    "AUTH_MODES",
    "MAX_WAIT",
    "RETRIED",
    "SYSTEMS",
    "USER_ID_MODES",
    "WEBDAV_ICON",
    "UploadBody",
    "WebDAVClient",
    "WebDAVStorage",
    "efss_user",
    "parse_multistatus",
    "raise_for",
]
