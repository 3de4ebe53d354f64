"""The WebDAV HTTP client: verbs on one user's DAV root, auth schemes, PROPFIND parsing.

Boundary: this module speaks WebDAV (PROPFIND, GET, PUT, MKCOL, MOVE, DELETE) to ONE
EFSS server with one user's secret and turns transport failures and unsuccessful answers
into ``common.errors`` exceptions; what paths mean (folders, uploads, listings) is
``storage``'s business. The XML of PROPFIND answers is parsed with defusedxml, streamed,
with DTDs refused: the answer comes from a server we do not control and may be huge
(1000s of entries) or hostile (entity expansion, external entities).
"""

from __future__ import annotations

import base64
import email.utils
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple
from urllib.parse import quote, unquote
from xml.etree.ElementTree import ParseError

import requests
import urllib3
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from common import outside
from common.errors import (
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
from common.retry import Policy
from common.streams import CHUNK_SIZE, Meter
from common.upstream import ASKED, Upstream

log = logging.getLogger("rds.webdav")

RETRIED = ("PROPFIND", "GET", "HEAD", "DELETE")  # idempotent and bodiless (PROPFIND's is fixed)
ATTEMPTS = 3  # per request: the first and at most two retries
MAX_WAIT = 30.0  # the longest Retry-After waited out; a longer one goes back as a 429
# 3 tries, back-off 0.25 -> 4 s on transport failures, 0.5 s (502/504) or 1 s (503) on
# answers, 1 s on a 429 without Retry-After
POLICY = Policy(
    attempts=ATTEMPTS,
    base=0.25,
    cap=4.0,
    exceptions=(UpstreamUnavailable, UpstreamTimeout),
    status_waits={502: 0.5, 503: 1.0, 504: 0.5},
    max_wait=MAX_WAIT,
    rate_wait=1.0,
)
DAV = "{DAV:}"
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>'
)
# the sweep of leftover upload files also needs each entry's age
PROPFIND_MODIFIED_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getlastmodified/></d:prop>'
    b"</d:propfind>"
)
# An href is an absolute URL or path; no query is split off: servers (wsgidav) leave a '?'
# of a file name unescaped in hrefs, so urlsplit would cut the name there.
_SCHEME_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/]*")


STORAGE = Upstream(
    {
        Unauthorized: ("the file storage refused the user's credentials", "userId"),
        Forbidden: ("the file storage forbids this on {what}", ASKED),
        NotFound: ("nothing at {what}", ASKED),
        423: ("{what} is locked in the file storage", ASKED),
        Conflict: ("{what} conflicts with what the file storage holds", ASKED),
        PayloadTooLarge: ("the file storage refuses a file this large", "file"),
        TooManyRequests: ("the file storage asks to slow down", None),
        InsufficientStorage: ("the user's file storage has no space left (quota)", None),
        UpstreamUnavailable: ("the file storage is unavailable ({status})", None),
        UpstreamTimeout: ("the file storage's gateway timed out (504)", None),
    },
    "the file storage answered {status} for {what}",
    faults={
        UpstreamTimeout: "the file storage did not answer {method} in time",
        UpstreamUnavailable: "the file storage cannot be reached",
        UpstreamError: "{method} to the file storage failed",
    },
)


def raise_for(resp: requests.Response, what: str, field: str = "filepath") -> None:
    """Turn an unsuccessful upstream status into the matching ``ConnectorError``."""
    STORAGE.check(resp, what=what, field=field)


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
        self.session = session or outside.session("webdav")
        self.timeout = timeout
        self._learned = learned or (lambda mode: None)
        self.auth_first = auth_first

    @property
    def user(self) -> str:
        """The EFSS user id the client acts as (never the secret)."""
        return self._user

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

        def once() -> requests.Response:
            self.last_attempts += 1
            return self._request_once(method, path, headers, data, stream, replayable)

        self.last_attempts = 0
        return POLICY.run(
            once,
            sleep=self.sleep,
            idempotent=method in RETRIED,
            replayable=replayable,
            log=lambda reason, attempt, wait: log.warning(
                "webdav.retry method=%s reason=%s wait=%.2fs", method, reason, wait
            ),
        )

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
        except requests.RequestException as exc:
            raise STORAGE.transport(exc, method=method) from exc

    def propfind(self, path: str, depth: int, *, modified: bool = False) -> requests.Response:
        """``PROPFIND`` asking only for ``resourcetype`` (and ``getlastmodified`` when
        ``modified``); the answer is streamed."""
        headers = {"Depth": str(depth), "Content-Type": "application/xml; charset=utf-8"}
        body = PROPFIND_MODIFIED_BODY if modified else PROPFIND_BODY
        return self.request("PROPFIND", path, headers=headers, data=body, stream=True)

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


class Entry(NamedTuple):
    """One ``<response>`` of a multistatus answer."""

    href: str  # the decoded path
    is_folder: bool
    modified: float | None  # ``getlastmodified`` as a Unix time, when asked for and readable


def http_time(value: str | None) -> float | None:
    """An HTTP date (``getlastmodified``, ``Date``) as a Unix time, or None."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value.strip()).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_multistatus(resp: requests.Response) -> Iterator[tuple[str, bool]]:
    """Yield ``(decoded href path, is collection)`` per ``<response>``, streaming the XML."""
    for entry in parse_entries(resp):
        yield entry.href, entry.is_folder


def parse_entries(resp: requests.Response) -> Iterator[Entry]:
    """Yield an ``Entry`` per ``<response>``, streaming the XML."""
    resp.raw.decode_content = True
    try:
        for _, elem in iterparse(resp.raw, events=("end",), forbid_dtd=True):
            if elem.tag != DAV + "response":
                continue
            href = elem.findtext(DAV + "href") or ""
            is_folder = elem.find(f".//{DAV}resourcetype/{DAV}collection") is not None
            modified = http_time(elem.findtext(f".//{DAV}getlastmodified"))
            elem.clear()
            yield Entry(unquote(_SCHEME_HOST.sub("", href.strip())), is_folder, modified)
    except (ParseError, DefusedXmlException) as exc:
        raise UpstreamError("the file storage answered PROPFIND with malformed XML") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise UpstreamUnavailable("the file storage broke off its PROPFIND answer") from exc


def body_chunks(resp: requests.Response, path: str) -> Iterator[bytes]:
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
        return int(self.meter.expected or 0)

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


def check_moved(resp: requests.Response, what: str) -> None:
    """A MOVE is done only on 201 or 204 (RFC 4918); any other 2xx (say, a proxy's web
    page) is no proof that the file is where it should be."""
    raise_for(resp, what)
    if resp.status_code not in (201, 204):
        raise UpstreamError(f"the file storage answered MOVE of {what} with {resp.status_code}")
