"""The ``webdav`` backend: the fileStorage interface on a user's ownCloud/Nextcloud files.

Boundary: this module speaks WebDAV (PROPFIND, GET, PUT, MKCOL, MOVE, DELETE) to ONE
EFSS server with the caller's own secret, and turns the answers into the Storage
protocol's shapes and ``common.errors`` exceptions. It knows no web framework and keeps
no user state; the one learned fact is which auth scheme the server accepts (``auto``).

Path styles (``EFSS_SYSTEM``): ownCloud ``/remote.php/webdav/<path>`` (the user is implied
by the credentials) and Nextcloud ``/remote.php/dav/files/<efss-user>/<path>``. RDS names
users by their cloud id (``alice@cloud.example.org``); the EFSS user id is that without the
installation's own host (``WEBDAV_USER_ID``: ``auto`` strips ``@<host>`` only when the host
is the configured server's, ``strip`` always cuts at the last ``@``, ``keep`` sends it whole).

Uploads go to a hidden ``.rds-upload-*.part`` file beside the target and are MOVEd onto it
only when the PUT completed, so a broken upload never replaces or shows as the file
(servers such as wsgidav write a PUT in place). The XML of PROPFIND answers is parsed with
defusedxml, streamed, with DTDs refused: the answer comes from a server we do not control
and may be huge (1000s of entries) or hostile (entity expansion, external entities).
"""

from __future__ import annotations

import base64
import logging
import posixpath
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit
from xml.etree.ElementTree import ParseError

import requests
import urllib3
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from common.backends.base import Json, LoginFailed, walk_files
from common.config import Settings
from common.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    ConnectorError,
    Forbidden,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from common.identity import Identity
from common.streams import CHUNK_SIZE, Download, Meter, Upload

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
RETRIED = ("PROPFIND", "GET", "HEAD", "DELETE")  # idempotent and bodiless (PROPFIND's is fixed)
RETRY_STATUS = (502, 503, 504)
ATTEMPTS = 3  # per request: the first and at most two retries
MAX_WAIT = 30.0  # the longest Retry-After waited out; a longer one goes back as a 429
DISCARD_DELAYS = (0.05, 0.2, 0.5, 1.0)  # seconds between DELETEs of an aborted upload's temp file
USER_ID_MODES = ("auto", "strip", "keep")
DAV = "{DAV:}"
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>'
)
_URL = re.compile(r"^https?://[^/\s]+")
# An href is an absolute URL or path; no query is split off: servers (wsgidav) leave a '?'
# of a file name unescaped in hrefs, so urlsplit would cut the name there.
_SCHEME_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*")
_ICON_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<circle cx="5" cy="9" r="3" fill="#1d6fb8"/><circle cx="10" cy="7" r="4" fill="#1d6fb8"/>'
    b"</svg>"
)
WEBDAV_ICON = "data:image/svg+xml;base64," + base64.b64encode(_ICON_SVG).decode()


def _url_setting(settings: Settings, name: str, *, required: bool = False) -> str | None:
    value = settings.require(name) if required else settings.get(name)
    if value is None:
        return None
    if not _URL.match(value):
        raise ConfigError(f"{name} must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _choice(settings: Settings, name: str, choices: tuple[str, ...], default: str) -> str:
    value = (settings.get(name) or default).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices}, not {value!r}")
    return value


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


def raise_for(resp: requests.Response, what: str, field: str = "filepath") -> None:
    """Turn an unsuccessful upstream status into the matching ``ConnectorError``."""
    status = resp.status_code
    if status < 300:
        return
    if status == 401:
        raise Unauthorized("the file storage refused the user's credentials", field="userId")
    if status == 403:
        raise Forbidden(f"the file storage forbids this on {what}", field=field)
    if status == 404:
        raise NotFound(f"nothing at {what}", field=field)
    if status in (409, 412):
        raise Conflict(f"{what} conflicts with what the file storage holds", field=field)
    if status == 413:
        raise PayloadTooLarge("the file storage refuses a file this large", field="file")
    if status == 423:
        raise Conflict(f"{what} is locked in the file storage", field=field)
    if status == 429:
        retry = resp.headers.get("Retry-After")
        headers = {"Retry-After": retry} if retry else None
        raise TooManyRequests("the file storage asks to slow down", headers=headers)
    if status == 507:
        raise InsufficientStorage("the user's file storage has no space left (quota)")
    if status in (502, 503):
        raise UpstreamUnavailable(f"the file storage is unavailable ({status})")
    if status == 504:
        raise UpstreamTimeout("the file storage's gateway timed out (504)")
    raise UpstreamError(f"the file storage answered {status} for {what}")


def _backoff(attempt: int) -> float:
    return min(0.25 * 2 ** (attempt - 1), 4.0)


def _wait_for(resp: requests.Response, retry: bool, replayable: bool) -> float | None:
    """Seconds to wait before sending again, or None: this answer is the one to keep."""
    if resp.status_code == 429 and replayable:
        value = (resp.headers.get("Retry-After") or "").strip()
        if not value:
            return 1.0
        return float(value) if value.isdigit() and float(value) <= MAX_WAIT else None
    if resp.status_code in RETRY_STATUS and retry:
        return 1.0 if resp.status_code == 503 else 0.5
    return None


class WebDAVClient:
    """WebDAV verbs on one user's DAV root; knows auth and transport errors, not paths' meaning.

    ``auth`` is ``bearer``, ``basic`` or ``auto``; with ``auto`` a request whose body can be
    sent again is retried once with the other scheme on a 401, and ``learned`` is told the
    scheme that worked so the next requests (and streamed PUTs) use it first.
    """

    def __init__(
        self,
        root_url: str,
        secret: str,
        *,
        user: str,
        auth: str = "bearer",
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (10.0, 600.0),
        learned: Callable[[str], None] | None = None,
        auth_first: str = "bearer",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.root_url = root_url.rstrip("/")
        self.sleep = sleep
        self.last_attempts = 0  # attempts of the latest request (see ``delete_file``)
        self._secret = secret
        self._user = user
        self.auth = auth
        self.session = session or requests.Session()
        self.timeout = timeout
        self._learned = learned or (lambda mode: None)
        self.auth_first = auth_first

    def url(self, path: str) -> str:
        """The full URL of ``path`` (relative, '' for the root) under the DAV root."""
        return f"{self.root_url}/{quote(path, safe='/')}" if path else self.root_url + "/"

    def _header(self, scheme: str) -> str:
        if scheme == "bearer":
            return f"Bearer {self._secret}"
        pair = f"{self._user}:{self._secret}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def _schemes(self, replayable: bool) -> list[str]:
        if self.auth in ("bearer", "basic"):
            return [self.auth]
        other = "basic" if self.auth_first == "bearer" else "bearer"
        return [self.auth_first, other] if replayable else [self.auth_first]

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        data: Any = None,
        stream: bool = False,
        replayable: bool = True,
    ) -> requests.Response:
        """Send one request; transport failures become 503/504 problems.

        Idempotent verbs (``RETRIED``) are sent again, at most ``ATTEMPTS`` times in all, on
        502/503/504, a reset or a timeout; a 429 is waited out (``Retry-After`` up to
        ``MAX_WAIT``) for every request whose body can be sent again. A streamed PUT and a
        MOVE are sent once: their retry could not be told from a second, different call.
        """
        retry = method in RETRIED
        for attempt in range(1, ATTEMPTS + 1):
            self.last_attempts = attempt
            last = attempt == ATTEMPTS
            try:
                resp = self._request_once(method, path, headers, data, stream, replayable)
            except (UpstreamUnavailable, UpstreamTimeout):
                if not retry or last:
                    raise
                self._pause(method, "connection", _backoff(attempt))
                continue
            wait = _wait_for(resp, retry, replayable) if not last else None
            if wait is None:
                return resp
            resp.close()
            self._pause(method, f"status-{resp.status_code}", wait)
        raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover

    def _pause(self, method: str, reason: str, wait: float) -> None:
        log.warning("webdav.retry method=%s reason=%s wait=%.2fs", method, reason, wait)
        self.sleep(wait)

    def _request_once(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None,
        data: Any,
        stream: bool,
        replayable: bool,
    ) -> requests.Response:
        schemes = self._schemes(replayable)
        for i, scheme in enumerate(schemes):
            all_headers = {**(headers or {}), "Authorization": self._header(scheme)}
            resp = self._send(method, self.url(path), all_headers, data, stream)
            if resp.status_code == 401 and i + 1 < len(schemes):
                resp.close()
                continue
            if self.auth == "auto" and resp.status_code != 401 and scheme != self.auth_first:
                self.auth_first = scheme
                self._learned(scheme)
            return resp
        raise AssertionError("unreachable: the loop returns")  # pragma: no cover

    def _send(
        self, method: str, url: str, headers: dict[str, str], data: Any, stream: bool
    ) -> requests.Response:
        try:
            return self.session.request(
                method,
                url,
                headers=headers,
                data=data,
                stream=stream,
                timeout=self.timeout,
                allow_redirects=False,  # a redirect is an answer here (and must not carry auth)
            )
        except ConnectorError:
            raise  # the upload's own stream refused its bytes (wrong size): the caller's fault
        except requests.Timeout as exc:
            raise UpstreamTimeout(f"the file storage did not answer {method} in time") from exc
        except requests.ConnectionError as exc:
            raise UpstreamUnavailable("the file storage cannot be reached") from exc
        except requests.RequestException as exc:
            raise UpstreamError(f"{method} to the file storage failed") from exc

    def propfind(self, path: str, depth: int) -> requests.Response:
        """``PROPFIND`` asking only for ``resourcetype`` (the answer is streamed)."""
        headers = {"Depth": str(depth), "Content-Type": "application/xml; charset=utf-8"}
        return self.request("PROPFIND", path, headers=headers, data=PROPFIND_BODY, stream=True)

    def kind(self, path: str) -> str | None:
        """``folder``, ``file`` or ``None`` (nothing there) by a ``PROPFIND Depth: 0``."""
        resp = self.propfind(path, 0)
        with resp:
            if resp.status_code in (404, 409):
                return None
            if resp.status_code != 207:
                raise_for(resp, f"/{path}")
                raise UpstreamError(f"the file storage answered PROPFIND with {resp.status_code}")
            for _, is_folder in parse_multistatus(resp):
                return "folder" if is_folder else "file"
        return None

    def destination(self, path: str) -> str:
        """The full URL for a ``Destination`` header (MOVE/COPY need the whole URL)."""
        return self.url(path)


def parse_multistatus(resp: requests.Response) -> Iterator[tuple[str, bool]]:
    """Yield ``(decoded href path, is collection)`` per ``<response>``, streaming the XML."""
    resp.raw.decode_content = True
    try:
        for _, elem in iterparse(resp.raw, events=("end",), forbid_dtd=True):
            if elem.tag != DAV + "response":
                continue
            href = elem.findtext(DAV + "href") or ""
            is_folder = elem.find(f".//{DAV}resourcetype/{DAV}collection") is not None
            elem.clear()
            yield unquote(_SCHEME_HOST.sub("", href.strip())), is_folder
    except (ParseError, DefusedXmlException) as exc:
        raise UpstreamError("the file storage answered PROPFIND with malformed XML") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise UpstreamUnavailable("the file storage broke off its PROPFIND answer") from exc


def _body_chunks(resp: requests.Response, path: str) -> Iterator[bytes]:
    """The answer's bytes; a connection lost mid-file becomes a 503 problem, not a crash."""
    try:
        yield from resp.iter_content(CHUNK_SIZE)
    except requests.RequestException as exc:
        raise UpstreamUnavailable(
            f"the file storage broke off the download of /{path}", field="filepath"
        ) from exc


class UploadBody:
    """The upload's ``Meter`` as a PUT body, remembering an error of the caller's stream.

    ``requests`` reports a failing body iterator as a connection error; ``error`` lets the
    backend re-raise what really happened (a short upload is the caller's 400, not a 503).
    """

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.meter
        except BaseException as exc:
            self.error = exc
            raise

    def __len__(self) -> int:
        return len(self.meter)

    def data(self) -> Any:
        """What ``requests`` sends with ``Content-Length`` when the size is known, else chunked.

        ``requests`` tests ``data`` for truth, which calls ``len()``: a body of unknown size
        goes as a plain iterator, one of size 0 is checked empty here and sent as ``b""``.
        """
        if self.meter.expected is None:
            return iter(self)
        if self.meter.expected == 0:
            for _ in self:
                pass  # raises if the stream holds any byte
            return b""
        return self


class WebDAVStorage:
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
        self.session = session or requests.Session()
        self.timeout = timeout
        self.sleep = sleep
        self._own_hosts = _hosts(self.server_url, self.public_url)
        self._auth_first = "bearer"

    @classmethod
    def from_settings(cls, settings: Settings) -> WebDAVStorage:
        """Read ``EFSS_SYSTEM``, ``OWNCLOUD_*`` and ``WEBDAV_*``; ``ConfigError`` names the fault."""
        system = _choice(settings, "EFSS_SYSTEM", tuple(SYSTEMS), "owncloud")
        public = _url_setting(settings, "OWNCLOUD_INSTALLATION_URL", required=True)
        internal = _url_setting(settings, "OWNCLOUD_INTERNAL_INSTALLATION_URL")
        auth = _choice(settings, "WEBDAV_AUTH", AUTH_MODES, "bearer")
        user_id = _choice(settings, "WEBDAV_USER_ID", USER_ID_MODES, "auto")
        oauth = None
        if auth != "basic":
            oauth = _oauth_fields(settings, system, public or "", internal)
        session = requests.Session()
        session.verify = settings.verify_ssl
        return cls(
            internal or public or "",
            system=system,
            public_url=public,
            auth=auth,
            user_id=user_id,
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
        return {
            "displayName": name,
            "description": {
                "en": f"Your files in {name}, over WebDAV.",
                "de": f"Ihre Dateien in {name}, über WebDAV.",
            },
            "icon": WEBDAV_ICON,
            "infoUrl": self.public_url,
            "helpUrl": "",
            "projectLinkTemplate": "",
        }

    # -- helpers -------------------------------------------------------------------------
    def _learn(self, scheme: str) -> None:
        log.info("webdav.auth learned=%s", scheme)
        self._auth_first = scheme

    def client(self, who: Identity) -> WebDAVClient:
        """A client on the caller's DAV root with the caller's secret."""
        user = efss_user(who.user, self.user_id, self._own_hosts)
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

    def list_files(self, who: Identity, path: str, limit: int) -> list[str]:
        """Every file below ``path`` by ``PROPFIND Depth: 1`` per folder (servers commonly
        refuse ``Depth: infinity``, ownCloud and Nextcloud by default)."""
        return walk_files(lambda folder: self.list_folder(who, folder), path, limit)

    def open_file(self, who: Identity, path: str, byte_range: str | None = None) -> Download:
        """Stream the file's bytes; ``Range`` goes to the server (an unsatisfiable one is dropped)."""
        if not path:
            raise BadRequest("/ is a folder", field="filepath")
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
            _body_chunks(resp, path),
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

    def store_file(self, who: Identity, path: str, upload: Upload) -> Json:
        """PUT the stream to a hidden temp file, then MOVE it onto ``path``."""
        if not path:
            raise BadRequest("filepath names the root folder, not a file", field="filepath")
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
            _check_moved(moved, f"/{path}")
        except BaseException:
            self._discard(client, temp)
            raise
        log.info("webdav.stored size=%d md5=%s", meter.size, meter.md5)
        return {"filepath": f"/{path}", "size": meter.size, "checksum": f"md5:{meter.md5}"}

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

    def move_file(self, who: Identity, path: str, new_path: str) -> Json:
        """MOVE (never overwriting): a taken ``newfilepath`` is a 409."""
        if not path or not new_path:
            raise BadRequest("the root folder cannot be moved", field="filepath")
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
        _check_moved(resp, f"/{path}")
        return {"filepath": f"/{new_path}"}

    def delete_file(self, who: Identity, path: str) -> None:
        """DELETE a file, or a folder with everything in it."""
        if not path:
            raise BadRequest("the root folder cannot be deleted", field="filepath")
        client = self.client(who)
        resp = client.request("DELETE", path)
        resp.close()
        if resp.status_code == 404 and client.last_attempts > 1:
            return  # an earlier attempt deleted it; only its answer was lost
        raise_for(resp, f"/{path}")


def _check_moved(resp: requests.Response, what: str) -> None:
    """A MOVE is done only on 201 or 204 (RFC 4918); any other 2xx (say, a proxy's web
    page) is no proof that the file is where it should be."""
    raise_for(resp, what)
    if resp.status_code not in (201, 204):
        raise UpstreamError(f"the file storage answered MOVE of {what} with {resp.status_code}")


def _oauth_fields(settings: Settings, system: str, public: str, internal: str | None) -> Json:
    """Registration fields for RDS's OAuth2 flow with the EFSS's own OAuth2 app.

    The browser is sent to the PUBLIC authorize URL; the Token Storage refreshes tokens
    server-to-server, so the refresh URL prefers the internal address.
    """
    client_id = settings.require("OWNCLOUD_OAUTH_CLIENT_ID")
    client_secret = settings.require("OWNCLOUD_OAUTH_CLIENT_SECRET")
    _, authorize_path, token_path, _ = SYSTEMS[system]
    query = {"response_type": "code", "client_id": client_id}
    if settings.redirect_uri:
        query["redirect_uri"] = settings.redirect_uri
    authorize = _url_setting(settings, "OWNCLOUD_OAUTH_AUTHORIZE_URL") or public + authorize_path
    refresh = (
        _url_setting(settings, "OWNCLOUD_OAUTH_TOKEN_URL") or (internal or public) + token_path
    )
    return {
        "authorize_url": f"{authorize}?{urlencode(query)}",
        "refresh_url": refresh,
        "client_id": client_id,
        "client_secret": client_secret,
    }


def _is_upload_temp(name: str) -> bool:
    """Our own in-flight upload files (``.rds-upload-<hex>.part``), hidden from listings."""
    return name.startswith(".rds-upload-") and name.endswith(".part")
