"""The ``webdav`` backend: the fileStorage interface on a user's ownCloud/Nextcloud files.

Boundary: this module turns the Storage protocol into calls of ``client.WebDAVClient``
(one EFSS server, the caller's own secret) and its answers into the protocol's shapes. It knows no web framework and keeps
no user state; the one learned fact is which auth scheme the server accepts (``auto``).

Path styles (``EFSS_SYSTEM``): ownCloud ``/remote.php/webdav/<path>`` (the user is implied
by the credentials) and Nextcloud ``/remote.php/dav/files/<efss-user>/<path>``. RDS names
users by their cloud id (``alice@cloud.example.org``); the EFSS user id is that without the
installation's own host (``WEBDAV_USER_ID``: ``auto`` strips ``@<host>`` only when the host
is the configured server's, ``strip`` always cuts at the last ``@``, ``keep`` sends it whole).

Uploads go to a hidden ``.rds-upload-*.part`` file beside the target and are MOVEd onto it
only when the PUT completed, so a broken upload never replaces or shows as the file
(servers such as wsgidav write a PUT in place).
"""

from __future__ import annotations

import logging
import posixpath
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlencode, urlsplit

import requests

from common import outside
from common.backends.base import Json, LoginFailed, StorageBase, service_info, svg_icon
from common.backends.webdav.client import (
    UploadBody,
    WebDAVClient,
    body_chunks,
    check_moved,
    parse_multistatus,
    raise_for,
)
from common.config import Settings, load_declared, setting, text_setting
from common.errors import (
    BadRequest,
    Conflict,
    ConnectorError,
    NotFound,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from common.identity import Identity, check_user_name
from common.streams import Download, Meter, Upload

log = logging.getLogger("rds.webdav")

SYSTEMS = {
    # system: (DAV path template, OAuth2 authorize path, OAuth2 token path, display name)
    "owncloud": (
        "/remote.php/webdav",
        "/index.php/apps/oauth2/authorize",
        "/index.php/apps/oauth2/api/v1/token",
        "ownCloud",
    ),
    "nextcloud": (
        "/remote.php/dav/files/{user}",
        "/apps/oauth2/authorize",
        "/apps/oauth2/api/v1/token",
        "Nextcloud",
    ),
}
AUTH_MODES = ("bearer", "basic", "auto")
DISCARD_DELAYS = (0.05, 0.2, 0.5, 1.0)  # seconds between DELETEs of an aborted upload's temp file
USER_ID_MODES = ("auto", "strip", "keep")
_ICON_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<circle cx="5" cy="9" r="3" fill="#1d6fb8"/><circle cx="10" cy="7" r="4" fill="#1d6fb8"/>'
    b"</svg>"
)
WEBDAV_ICON = svg_icon(_ICON_SVG)


@dataclass(frozen=True)
class WebDAVSettings:
    """The webdav backend's variables, all checked when it is built at start."""

    system: str = setting("EFSS_SYSTEM", "choice", "owncloud", choices=tuple(SYSTEMS))
    public: str = setting("OWNCLOUD_INSTALLATION_URL", "url", required=True)
    internal: str | None = setting("OWNCLOUD_INTERNAL_INSTALLATION_URL", "url")
    auth: str = setting("WEBDAV_AUTH", "choice", "bearer", choices=AUTH_MODES)
    user_id: str = setting("WEBDAV_USER_ID", "choice", "auto", choices=USER_ID_MODES)
    authorize_url: str | None = setting("OWNCLOUD_OAUTH_AUTHORIZE_URL", "url")
    token_url: str | None = setting("OWNCLOUD_OAUTH_TOKEN_URL", "url")


def efss_user(user: str, mode: str, own_hosts: set[str]) -> str:
    """The EFSS user id in an RDS user name (a cloud id ``<user>@<host>``)."""
    local, sep, host = user.rpartition("@")
    if mode == "keep" or not sep or not local:
        return user
    if mode == "strip" or host.lower() in own_hosts:
        return local
    return user


def _hosts(*urls: str | None) -> set[str]:
    """Host and host:port of each URL: the suffixes ``auto`` strips off cloud ids."""
    out: set[str] = set()
    for url in urls:
        if url:
            parts = urlsplit(url)
            out.update(h.lower() for h in (parts.hostname, parts.netloc) if h)
    return out


class WebDAVStorage(
    StorageBase
):  # list_files walks folder by folder: servers refuse Depth: infinity
    """fileStorage interface on an ownCloud/Nextcloud WebDAV endpoint, as the caller."""

    needs_token = True

    def __init__(
        self,
        server_url: str,
        *,
        system: str = "owncloud",
        public_url: str | None = None,
        auth: str = "bearer",
        user_id: str = "auto",
        oauth: Json | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (10.0, 600.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.public_url = (public_url or server_url).rstrip("/")
        self.system = system
        self.auth = auth
        self.user_id = user_id
        self.oauth = oauth
        self.session = session or outside.session("webdav")
        self.timeout = timeout
        self.sleep = sleep
        self._own_hosts = _hosts(self.server_url, self.public_url)
        self._auth_first = "bearer"

    @classmethod
    def from_settings(cls, settings: Settings) -> WebDAVStorage:
        """Read ``EFSS_SYSTEM``, ``OWNCLOUD_*`` and ``WEBDAV_*``; ``ConfigError`` names the fault."""
        own = load_declared(WebDAVSettings, settings)
        oauth = None
        if own.auth != "basic":
            oauth = _oauth_fields(settings, own)
        session = outside.session("webdav", verify=settings.verify_ssl)
        return cls(
            own.internal or own.public,
            system=own.system,
            public_url=own.public,
            auth=own.auth,
            user_id=own.user_id,
            oauth=oauth,
            session=session,
            timeout=(settings.connect_timeout, settings.read_timeout),
        )

    # -- Backend -------------------------------------------------------------------------
    def login(self) -> None:
        """Prove the server answers HTTP (no user is known at init, so no login as one)."""
        base = SYSTEMS[self.system][0].split("{", 1)[0].rstrip("/") + "/"
        try:
            resp = self.session.request("OPTIONS", self.server_url + base, timeout=self.timeout)
        except requests.RequestException as exc:
            raise LoginFailed(
                f"the WebDAV server {self.server_url} cannot be reached ({exc.__class__.__name__})"
            ) from exc
        resp.close()
        if resp.status_code >= 500:
            raise LoginFailed(f"the WebDAV server {self.server_url} answers {resp.status_code}")

    def registration_fields(self) -> Json:
        """OAuth2 fields; with app passwords (``WEBDAV_AUTH=basic``) a user/password form."""
        if self.oauth is None:
            return {"credentials": {"userId": True, "password": True}}
        return dict(self.oauth)

    def service_info(self) -> Json:
        name = SYSTEMS[self.system][3]
        return service_info(
            name,
            f"Your files in {name}, over WebDAV.",
            f"Ihre Dateien in {name}, über WebDAV.",
            WEBDAV_ICON,
            infoUrl=self.public_url,
        )

    # -- helpers -------------------------------------------------------------------------
    def _learn(self, scheme: str) -> None:
        log.info("webdav.auth learned=%s", scheme)
        self._auth_first = scheme

    def client(self, who: Identity) -> WebDAVClient:
        """A client on the caller's DAV root with the caller's secret."""
        user = check_user_name(efss_user(who.user, self.user_id, self._own_hosts))
        root = SYSTEMS[self.system][0].format(user=quote(user, safe=""))
        return WebDAVClient(
            self.server_url + root,
            who.require_token(),
            user=user,
            auth=self.auth,
            session=self.session,
            timeout=self.timeout,
            learned=self._learn,
            auth_first=self._auth_first,
            sleep=self.sleep,
        )

    def _ensure_folder(self, client: WebDAVClient, folder: str) -> None:
        """Make ``folder`` and its missing parents (``MKCOL`` from the top down)."""
        if not folder:
            return
        kind = client.kind(folder)
        if kind == "folder":
            return
        if kind == "file":
            raise Conflict("a file stands where the path needs a folder", field="filepath")
        parts = folder.split("/")
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            resp = client.request("MKCOL", sub)
            resp.close()
            if resp.status_code == 405 and client.kind(sub) == "folder":
                continue  # exists already
            if resp.status_code in (405, 409):
                raise Conflict("a file stands where the path needs a folder", field="filepath")
            raise_for(resp, f"/{sub}")

    # -- Storage -------------------------------------------------------------------------
    def list_folder(self, who: Identity, path: str) -> list[str]:
        """Children of ``path`` as absolute paths (folders end in '/'); a file lists as []."""
        client = self.client(who)
        resp = client.propfind(path, 1)
        with resp:
            if resp.status_code != 207:
                raise_for(resp, f"/{path}")
                raise UpstreamError(f"the file storage answered PROPFIND with {resp.status_code}")
            base = unquote(urlsplit(client.url(path)).path).rstrip("/")
            children: list[tuple[str, bool]] = []
            self_is_folder = True
            for href, is_folder in parse_multistatus(resp):
                href = href.rstrip("/")
                if href == base:
                    self_is_folder = is_folder
                elif href.startswith(base + "/") and "/" not in href[len(base) + 1 :]:
                    name = href[len(base) + 1 :]
                    if not _is_upload_temp(name):  # an upload in flight is not a file yet
                        children.append((name, is_folder))
        if not self_is_folder:
            return []
        prefix = f"/{path}/" if path else "/"
        return [prefix + name + ("/" if folder else "") for name, folder in sorted(children)]

    def _open(self, who: Identity, path: str, byte_range: str | None) -> Download:
        """Stream the file's bytes; ``Range`` goes to the server (an unsatisfiable one is dropped)."""
        client = self.client(who)
        headers = {"Accept-Encoding": "identity"}
        if byte_range:
            headers["Range"] = byte_range
        resp = client.request("GET", path, headers=headers, stream=True)
        if resp.status_code == 416:
            resp.close()
            headers.pop("Range")
            resp = client.request("GET", path, headers=headers, stream=True)
        if resp.status_code in (301, 302, 303, 307, 308, 405, 501) or (
            resp.status_code == 200 and resp.headers.get("Content-Type", "").startswith("text/html")
        ):
            self._refuse_folder(client, path, resp)
        if resp.status_code not in (200, 206):
            resp.close()
            raise_for(resp, f"/{path}")
            raise UpstreamError(f"the file storage answered GET with {resp.status_code}")
        length = resp.headers.get("Content-Length")
        encoded = resp.headers.get("Content-Encoding", "identity") != "identity"
        return Download(
            body_chunks(resp, path),
            int(length) if length and length.isdigit() and not encoded else None,
            status=resp.status_code,
            content_range=resp.headers.get("Content-Range") if resp.status_code == 206 else None,
            filename=posixpath.basename(path),
            close=resp.close,
        )

    @staticmethod
    def _refuse_folder(client: WebDAVClient, path: str, resp: requests.Response) -> None:
        """A GET that answered a web page (or refused) may have hit a folder: ask, then 400."""
        if client.kind(path) == "folder":
            resp.close()
            raise BadRequest(f"/{path} is a folder", field="filepath")

    def in_flight(self, path: str) -> bool:
        return any(_is_upload_temp(part) for part in path.split("/"))

    def _store(self, who: Identity, path: str, upload: Upload) -> Meter:
        """PUT the stream to a hidden temp file, then MOVE it onto ``path``."""
        client = self.client(who)
        kind = client.kind(path)  # resolves the auth scheme before the one-shot PUT
        if kind == "folder":
            raise Conflict("a folder already has this path", field="filepath")
        parent = posixpath.dirname(path)
        if kind is None:
            self._ensure_folder(client, parent)
        temp = posixpath.join(parent, f".rds-upload-{uuid.uuid4().hex}.part")
        meter = upload.meter(hinted=True)
        try:
            resp = self._put(client, temp, UploadBody(meter))
            resp.close()
            raise_for(resp, f"/{path}")
            moved = client.request(
                "MOVE", temp, headers={"Destination": client.destination(path), "Overwrite": "T"}
            )
            moved.close()
            if moved.status_code == 404:  # our own temp file is gone: the PUT did not land
                raise UpstreamError(
                    f"the file storage lost the upload of /{path} before it was in place",
                    field="file",
                )
            check_moved(moved, f"/{path}")
        except BaseException:
            self._discard(client, temp)
            raise
        log.info("webdav.stored size=%d md5=%s", meter.size, meter.md5)
        return meter

    @staticmethod
    def _put(client: WebDAVClient, temp: str, body: UploadBody) -> requests.Response:
        try:
            return client.request("PUT", temp, data=body.data(), replayable=False)
        except (UpstreamError, UpstreamUnavailable, UpstreamTimeout):
            if body.error is not None:
                raise body.error from None  # the upload's own stream failed, not the server
            raise

    def _discard(self, client: WebDAVClient, temp: str) -> None:
        """Best-effort removal of an unfinished upload (the original error is what counts).

        The server may still be handling the aborted PUT (and create the temp file after our
        first DELETE arrived), so a 404 is retried a few times, briefly, on this error path.
        """
        for delay in (*DISCARD_DELAYS, None):
            try:
                resp = client.request("DELETE", temp)
                resp.close()
            except ConnectorError:
                break
            if resp.status_code not in (404, 423) or delay is None:
                return
            self.sleep(delay)
        log.warning("webdav.temp_left_behind (delete failed)")

    def _move(self, who: Identity, path: str, new_path: str) -> None:
        """MOVE (never overwriting): a taken ``newfilepath`` is a 409."""
        client = self.client(who)
        if client.kind(path) is None:
            raise NotFound(f"nothing at /{path}", field="filepath")
        self._ensure_folder(client, posixpath.dirname(new_path))
        resp = client.request(
            "MOVE", path, headers={"Destination": client.destination(new_path), "Overwrite": "F"}
        )
        resp.close()
        if resp.status_code == 412:
            raise Conflict(f"/{new_path} exists already", field="newfilepath")
        check_moved(resp, f"/{path}")

    def _delete(self, who: Identity, path: str) -> None:
        """DELETE a file, or a folder with everything in it."""
        client = self.client(who)
        resp = client.request("DELETE", path)
        resp.close()
        if resp.status_code == 404 and client.last_attempts > 1:
            return  # an earlier attempt deleted it; only its answer was lost
        raise_for(resp, f"/{path}")


def _oauth_fields(settings: Settings, own: WebDAVSettings) -> Json:
    """Registration fields for RDS's OAuth2 flow with the EFSS's own OAuth2 app.

    The browser is sent to the PUBLIC authorize URL; the Token Storage refreshes tokens
    server-to-server, so the refresh URL prefers the internal address.
    """
    client_id = str(text_setting(settings, "OWNCLOUD_OAUTH_CLIENT_ID", required=True))
    client_secret = str(text_setting(settings, "OWNCLOUD_OAUTH_CLIENT_SECRET", required=True))
    _, authorize_path, token_path, _ = SYSTEMS[own.system]
    query = {"response_type": "code", "client_id": client_id}
    if settings.redirect_uri:
        query["redirect_uri"] = settings.redirect_uri
    authorize = own.authorize_url or own.public + authorize_path
    refresh = own.token_url or (own.internal or own.public) + token_path
    return {
        "authorize_url": f"{authorize}?{urlencode(query)}",
        "refresh_url": refresh,
        "client_id": client_id,
        "client_secret": client_secret,
    }


def _is_upload_temp(name: str) -> bool:
    """Our own in-flight upload files (``.rds-upload-<hex>.part``), hidden from listings."""
    return name.startswith(".rds-upload-") and name.endswith(".part")
