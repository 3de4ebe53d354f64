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
(servers such as wsgidav write a PUT in place). A failed upload deletes its part file for
as long as the server is busy (``WEBDAV_DISCARD_DEADLINE``); what still survives -- the
server finished the aborted PUT after we stopped looking, or the worker was killed -- is
swept by a later upload into the same folder (see ``_sweep``).
"""

from __future__ import annotations

import logging
import posixpath
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import requests

from common import outside
from common.backends.base import Json, LoginFailed, StorageBase, service_info, svg_icon
from common.backends.webdav.client import (
    UploadBody,
    WebDAVClient,
    body_chunks,
    check_moved,
    http_time,
    parse_entries,
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
from common.retry import Policy
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
# An aborted upload's part file: a 404 is asked again after these pauses (the server may
# create the file a moment after our DELETE); a busy server (423, 5xx, resets, timeouts
# after the client's own retries) is asked again with back-off until the deadline.
DISCARD_DELAYS = (0.05, 0.2, 0.5, 1.0)
DISCARD_POLICY = Policy(
    attempts=None,
    base=0.25,
    cap=4.0,
    statuses=frozenset({423, 502, 503, 504}),
    exceptions=(UpstreamUnavailable, UpstreamTimeout),
)
KEPT_FOLDERS = 4096  # folders whose last sweep (or our leftovers) a process remembers
_OUR_TEMP = re.compile(r"^\.rds-upload-[0-9a-f]{32}\.part$")  # what uuid4().hex makes
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
    discard_deadline: int = setting("WEBDAV_DISCARD_DEADLINE", "int", 30, lo=1, hi=3600)
    temp_max_age: int = setting("WEBDAV_TEMP_MAX_AGE", "int", 3600, lo=60, hi=30 * 86400)
    sweep_interval: int = setting("WEBDAV_SWEEP_INTERVAL", "int", 600, lo=1, hi=86400)


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
        clock: Callable[[], float] = time.time,
        discard_deadline: float = 30.0,
        temp_max_age: float = 3600.0,
        sweep_interval: float = 600.0,
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
        self.clock = clock
        #: how long a failed upload keeps asking a busy server to delete its part file
        self.discard_deadline = discard_deadline
        #: a part file of ours older than this (by the server's clock) is a leftover
        self.temp_max_age = temp_max_age
        #: a folder is listed for leftovers at most this often per user and process
        self.sweep_interval = sweep_interval
        self._own_hosts = _hosts(self.server_url, self.public_url)
        self._auth_first = "bearer"
        self._sweeps = threading.Lock()
        self._swept: dict[tuple[str, str, str], float] = {}  # folder -> clock() of last sweep
        self._left: dict[tuple[str, str, str], set[str]] = {}  # folder -> our undeleted parts

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
            discard_deadline=own.discard_deadline,
            temp_max_age=own.temp_max_age,
            sweep_interval=own.sweep_interval,
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

    def _ensure_folder(self, client: WebDAVClient, folder: str) -> bool:
        """Make ``folder`` and its missing parents (``MKCOL`` from the top down); True when
        ``folder`` itself was made now (so nothing can have been left in it)."""
        if not folder:
            return False
        kind = client.kind(folder)
        if kind == "folder":
            return False
        if kind == "file":
            raise Conflict("a file stands where the path needs a folder", field="filepath")
        parts = folder.split("/")
        made = False
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            resp = client.request("MKCOL", sub)
            resp.close()
            made = resp.status_code == 201
            if resp.status_code == 405 and client.kind(sub) == "folder":
                continue  # exists already
            if resp.status_code in (405, 409):
                raise Conflict("a file stands where the path needs a folder", field="filepath")
            raise_for(resp, f"/{sub}")
        return made

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
        made = kind is None and self._ensure_folder(client, parent)
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
        self._sweep(client, parent, made=made)
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
        """Remove an unfinished upload's part file (best effort: the upload's error counts).

        The server may still be handling the aborted PUT: it may answer 423 or 5xx, time
        out, or create the file after our first DELETE (a 404). A busy server is asked again
        with back-off until ``discard_deadline``, however many rounds of the client's own
        retries that takes; a 404 a few times, briefly. A file still not gone is remembered
        by name, and the next upload into its folder deletes it (``_sweep``).
        """
        end = self.clock() + self.discard_deadline
        status: int | None = None
        for delay in (*DISCARD_DELAYS, None):
            left = end - self.clock()
            if left <= 0:
                break
            try:
                resp = replace(DISCARD_POLICY, deadline=left).run(
                    lambda: client.request("DELETE", temp),
                    sleep=self.sleep,
                    clock=self.clock,
                    log=lambda reason, attempt, wait: log.warning(
                        "webdav.discard.retry reason=%s wait=%.2fs", reason, wait
                    ),
                )
            except ConnectorError as exc:  # still busy at the deadline, or refused
                status = getattr(exc, "status", None)
                break
            resp.close()
            status = resp.status_code
            if status != 404 or delay is None:
                break
            self.sleep(delay)
        if status in (200, 204):
            return
        log.warning("webdav.temp_left_behind status=%s", status)
        self._remember(client, temp)

    @staticmethod
    def _folder_key(client: WebDAVClient, folder: str) -> tuple[str, str, str]:
        return (client.root_url, client.user, folder)

    def _remember(self, client: WebDAVClient, temp: str) -> None:
        """Note a part file we could not delete, for the next upload into its folder."""
        key = self._folder_key(client, posixpath.dirname(temp))
        with self._sweeps:
            self._left.setdefault(key, set()).add(posixpath.basename(temp))
            _trim(self._left)

    def _sweep(self, client: WebDAVClient, folder: str, *, made: bool = False) -> None:
        """Delete what earlier uploads left in ``folder``; never fails the upload.

        Runs after the upload is in place. Part files this process could not delete are
        known by name and cost one DELETE each. Others (killed workers, restarts, other
        processes) are found by one ``PROPFIND Depth: 1`` asking for ``getlastmodified``,
        at most once per ``sweep_interval`` per folder, user and process, and not at all
        for a folder this upload made; of those, only ours (``.rds-upload-<hex>.part``)
        older than ``temp_max_age`` by the server's own clock go, so an upload in flight
        next door is never touched.
        """
        key = self._folder_key(client, folder)
        now = self.clock()
        with self._sweeps:
            known = self._left.pop(key, set())
            last = self._swept.get(key)
            due = not made and (last is None or now - last >= self.sweep_interval)
            if made or due:
                self._swept.pop(key, None)
                self._swept[key] = now  # claimed now: a concurrent upload does not list too
                _trim(self._swept)
        names = set(known)
        kept: set[str] = set()
        removed = 0
        try:
            if due:
                names |= self._stale_parts(client, folder)
            for name in sorted(names):
                resp = client.request("DELETE", posixpath.join(folder, name))
                resp.close()
                if resp.status_code in (200, 204):
                    removed += 1
                elif resp.status_code != 404 and name in known:
                    kept.add(name)  # locked or refused: try again next time
        except ConnectorError as exc:
            kept = known
            log.warning("webdav.sweep.failed error=%s", type(exc).__name__)
        if kept:
            with self._sweeps:
                self._left.setdefault(key, set()).update(kept)
        if removed:
            log.info("webdav.swept removed=%d", removed)

    def _stale_parts(self, client: WebDAVClient, folder: str) -> set[str]:
        """Names of our part files in ``folder`` older than ``temp_max_age``."""
        resp = client.propfind(folder, 1, modified=True)
        with resp:
            if resp.status_code != 207:
                raise_for(resp, f"/{folder}")
                return set()  # any other success: nothing to learn from it
            server_now = http_time(resp.headers.get("Date")) or self.clock()
            base = unquote(urlsplit(client.url(folder)).path).rstrip("/")
            stale = set()
            for entry in parse_entries(resp):
                href = entry.href.rstrip("/")
                if entry.is_folder or not href.startswith(base + "/"):
                    continue
                name = href[len(base) + 1 :]
                if "/" in name or not _OUR_TEMP.match(name) or entry.modified is None:
                    continue  # not ours, or of unknown age: never touched
                if server_now - entry.modified > self.temp_max_age:
                    stale.add(name)
        return stale

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


def _trim(table: dict[tuple[str, str, str], Any]) -> None:
    """Forget the oldest entries beyond ``KEPT_FOLDERS`` (insertion order is age)."""
    while len(table) > KEPT_FOLDERS:
        del table[next(iter(table))]
