"""Where a passive pull reads from, and how it reads a folder.

``Source`` is either this deployment's own storage backend (in-process) or another
connector's fileStorage interface over HTTP (``StorageClient``: bare user first and, on
any answer >= 300, the session form, as the Exporter asks; one retry policy; redirects
never followed; identity encoding). ``walk`` reads any listing form a real storage
connector sends, bounded in files and folders, never outside the folder.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from common.backends.base import Storage
from common.errors import (
    BadRequest,
    NotFound,
    Unauthorized,
    UpstreamError,
    UpstreamUnavailable,
)
from common.gcp_auth import IdTokenAuth
from common.identity import Identity
from common.paths import relative_path, storage_path
from common.retry import Policy
from common.streams import CHUNK_SIZE, Download
from common.upstream import Upstream

log = logging.getLogger("rds.passive")
_TOTAL = re.compile(r"/(\d+)\s*$")


@dataclass
class Source:
    """A fileStorage service as seen by the puller: list a folder, open a file."""

    storage: Storage | None = None  # in-process Storage backend
    who: Identity | None = None
    client: StorageClient | None = None

    def list_folder(self, path: str) -> list[str]:
        if self.storage is not None:
            assert self.who is not None
            return self.storage.list_folder(self.who, storage_path(path))
        assert self.client is not None
        return self.client.list_folder(path)

    def open(self, path: str) -> Download:
        if self.storage is not None:
            assert self.who is not None
            return self.storage.open_file(self.who, storage_path(path))
        assert self.client is not None
        return self.client.open(path)

    def size(self, path: str) -> int | None:
        """The file's size without its bytes (one ``Range: bytes=0-0`` request)."""
        if self.storage is not None:
            assert self.who is not None
            download = self.storage.open_file(self.who, storage_path(path), "bytes=0-0")
            if download.close:
                download.close()
            return total_size(download.status, download.content_range, download.size)
        assert self.client is not None
        return self.client.size(path)


class StorageClient:
    """HTTP client of another connector's fileStorage interface (``/storage/...``).

    Its GETs are idempotent: ``POLICY`` sends one again on a connection error or a
    502/503/504 (``Retry-After`` honoured) before the identity fallback below sees it.
    """

    POLICY = Policy(
        attempts=3,
        base=0.5,
        cap=4.0,
        exceptions=(requests.ConnectionError, requests.Timeout),
        max_wait=30.0,
    )
    ANSWERS = Upstream(
        {
            Unauthorized: ("{service} refused access to {what}", "service"),
            NotFound: ("{service} has nothing at {what}", "folder"),
        },
        "{service} answered {status} for {what}",
        faults={UpstreamUnavailable: "{service} cannot be reached"},
        means={403: Unauthorized},
    )

    def __init__(
        self,
        base_url: str,
        user: str,
        *,
        service: str,
        session: requests.Session,
        timeout: tuple[float, float],
        session_user_id: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.sleep = sleep
        self.user = user
        self.service = service
        self.session = session
        self.timeout = timeout
        self._session_user_id = session_user_id  # callable giving the session form, lazily
        self._user_id = user
        self._switch = threading.Lock()
        # on Google Cloud the target function runs --no-allow-unauthenticated: send an ID
        # token for its URL; elsewhere this adds nothing
        self._auth = IdTokenAuth(self.base_url)

    def _request(
        self,
        path: str,
        body: dict[str, Any],
        *,
        stream: bool,
        headers: dict[str, str] | None = None,
        accept: tuple[int, ...] = (),
    ) -> requests.Response:
        url = f"{self.base_url}/storage/{path}"
        for attempt in (1, 2):
            sent = self._user_id  # what THIS request carries (other threads may switch it)

            def send(sent: str = sent) -> requests.Response:
                return self.session.get(
                    url,
                    json={**body, "userId": sent},
                    headers=headers,
                    timeout=self.timeout,
                    stream=stream,
                    auth=self._auth,
                    allow_redirects=False,  # a redirect is an answer >= 300, never followed
                )

            try:
                resp = self.POLICY.run(send, sleep=self.sleep, log=self._log_retry)
            except requests.RequestException as exc:
                raise self.ANSWERS.transport(exc, service=self.service) from exc
            if resp.status_code < 300 or resp.status_code in accept:
                return resp
            resp.close()
            # like the Exporter: ANY refusal of the bare form is asked again in the session
            # form (the deployed port_owncloud answers a bare-form listing with 500)
            if attempt == 1 and sent == self.user and self._session_user_id:
                self._to_session_form()
                continue
            break
        where = body.get("filepath", "")
        raise self.ANSWERS.error(resp.status_code, what=where, service=self.service)

    def _to_session_form(self) -> None:
        """Switch every later request to the session form; the token is looked up once."""
        with self._switch:
            if self._user_id == self.user and self._session_user_id:
                self._user_id = self._session_user_id()

    def _log_retry(self, reason: str, attempt: int, wait: float) -> None:
        log.warning(
            "passive.retry service=%s reason=%s attempt=%d wait=%.2fs",
            self.service,
            reason,
            attempt,
            wait,
        )

    def list_folder(self, path: str) -> list[str]:
        resp = self._request("folder", {"filepath": path}, stream=False)
        try:
            files = resp.json()["files"]
        except (ValueError, KeyError, TypeError):
            raise UpstreamError(
                f"{self.service} answered a folder listing without 'files'"
            ) from None
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise UpstreamError(f"{self.service} answered a malformed folder listing")
        return files

    def open(self, path: str) -> Download:
        # the bytes as stored: a compressed answer would not match its Content-Length
        resp = self._request(
            "file", {"filepath": path}, stream=True, headers={"Accept-Encoding": "identity"}
        )
        length = resp.headers.get("Content-Length")
        return Download(
            resp.iter_content(CHUNK_SIZE),
            int(length) if length and length.isdigit() else None,
            close=resp.close,
        )

    def size(self, path: str) -> int | None:
        """The file's size from a ``Range: bytes=0-0`` GET (``None`` when not told).

        A storage that honours the range answers 206 with ``Content-Range: bytes 0-0/N``
        and one byte; one that ignores it answers 200 with ``Content-Length`` and the
        connection is closed before its body is read; an empty file may answer 416
        (``bytes */0``).
        """
        resp = self._request(
            "file", {"filepath": path}, stream=True, headers={"Range": "bytes=0-0"}, accept=(416,)
        )
        try:
            if resp.status_code == 206:
                _ = resp.content  # one byte: read it so the connection can be reused
            length = resp.headers.get("Content-Length")
            return total_size(
                resp.status_code,
                resp.headers.get("Content-Range"),
                int(length) if length and length.isdigit() else None,
            )
        finally:
            resp.close()


def total_size(status: int, content_range: str | None, length: int | None) -> int | None:
    """A file's whole size from the answer to a ``Range: bytes=0-0`` GET."""
    if status in (206, 416):
        m = _TOTAL.search(content_range or "")
        return int(m[1]) if m else None
    return length if status == 200 else None


def walk(source: Source, folder: str, limit: int) -> list[str]:
    """Every file below ``folder`` (``/a/b``, ``/`` for the root), named relative to it.

    Reads whatever listing a real fileStorage connector sends: port_owncloud's (recursive,
    relative, files only), the interface document's (absolute, one level, folders ending
    in ``/``, listed in turn), or a mix. An absolute entry below ``folder`` is made
    relative; any other entry is taken as relative to the folder listed (a stray leading
    ``/`` dropped), and one that would climb out of it is refused. At most ``limit`` files,
    and at most ``limit`` folders listed: a storage that answers every listing with more
    folders (or ignores ``filepath``) cannot keep a worker walking for ever.
    """
    root = folder.rstrip("/")
    pending: deque[str] = deque([""])
    listed: set[str] = set()
    files: dict[str, None] = {}  # insertion-ordered set: a mixed listing may repeat a file
    while pending:
        sub = pending.popleft()
        if sub in listed:
            continue
        listed.add(sub)
        if len(listed) > limit:
            raise UpstreamError(
                f"the storage listed more than {limit} folders below {folder}", field="folder"
            )
        for entry in source.list_folder(f"{root}/{sub}" if sub else root or "/"):
            name = _below(entry, root, sub)
            if entry.endswith("/"):
                pending.append(name)
                continue
            files[name] = None
            if len(files) > limit:
                raise BadRequest(f"the folder holds more than {limit} files", field="folder")
    return list(files)


def _below(entry: str, root: str, sub: str) -> str:
    """A listing's ``entry`` (of folder ``root/sub``) as a path relative to ``root``."""
    if entry.startswith(root + "/"):  # absolute (with root '' every '/...' entry is)
        name = entry[len(root) + 1 :]
    else:  # relative to the folder listed
        inner = entry.lstrip("/")
        name = f"{sub}/{inner}" if sub else inner
    try:
        return relative_path(name.rstrip("/"), "folder")
    except BadRequest:
        raise UpstreamError(
            f"the storage listed {entry!r}, which is not inside the folder"
        ) from None
