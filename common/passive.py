"""Passive transfer: the connector pulls a research folder from a fileStorage service.

The Exporter POSTs a plain form (``folder``, ``service``, ``username``, ``userId``) to
``/metadata/project/{id}/files``; no file bytes pass through that request, which is what
lets a per-function cloud deploy (32 MB bodies) move gigabytes. The folder is walked
(recursively) through the fileStorage interface of ``service`` -- over HTTP at
``PASSIVE_STORAGE_URL_TEMPLATE`` (default ``http://layer1-{service}``, the address RDS
callers build), or in-process when this deployment serves that storage itself -- and each
file is streamed into the project, its size known from the download's Content-Length.

Each file is reported with size, MD5 and status (stored, skipped, failed); one failure
does not stop the others, and the answer is a problem listing them when any failed (the
4xx every failure shares, else 502), because RDS Layer 2 treats every status below 300 as
success. A file already in the project with the same name, size and MD5 is skipped, so a
re-run resumes where one broke off.
Before any byte moves, the archive's optional ``check_batch`` sees the whole run (file
count; sizes are checked per file), so a run the record cannot hold is refused whole.
Like the Exporter, the storage is asked with the bare user first (it looks up the token
itself) and once more with a session-form userId when that is refused.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from common.backends.base import Archive, Storage
from common.config import setting
from common.errors import (
    BadRequest,
    ConnectorError,
    Forbidden,
    NotFound,
    TransferIncomplete,
    Unauthorized,
    UpstreamError,
    UpstreamUnavailable,
)
from common.gcp_auth import IdTokenAuth
from common.identity import Identity, lookup_token
from common.paths import relative_path, storage_path
from common.retry import Policy
from common.streams import CHUNK_SIZE, Download, Meter, Upload
from common.upstream import Upstream

if TYPE_CHECKING:  # the runtime builds PassiveSettings, so it is imported for types only
    from common.runtime import Runtime

log = logging.getLogger("rds.passive")
SERVICE_RE = re.compile(r"^port-[a-z0-9][a-z0-9._-]{0,100}$")
DEFAULT_TEMPLATE = "http://layer1-{service}"


@dataclass(frozen=True)
class PassiveSettings:
    """What passive transfer reads from the configuration, checked at start."""

    #: where another service's fileStorage interface answers (``{service}`` is replaced)
    storage_url_template: str = setting("PASSIVE_STORAGE_URL_TEMPLATE", "url", DEFAULT_TEMPLATE)
    #: a folder with more files is refused before any byte moves
    max_files: int = setting("PASSIVE_MAX_FILES", "int", 10_000, lo=1, hi=10**8)
    #: files moved at the same time
    concurrency: int = setting("PASSIVE_CONCURRENCY", "int", 4, lo=1, hi=256)


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
        # on Google Cloud the target function runs --no-allow-unauthenticated: send an ID
        # token for its URL; elsewhere this adds nothing
        self._auth = IdTokenAuth(self.base_url)

    def _request(self, path: str, body: dict[str, Any], *, stream: bool) -> requests.Response:
        url = f"{self.base_url}/storage/{path}"
        for attempt in (1, 2):
            try:
                resp = self.POLICY.run(
                    lambda: self.session.get(
                        url,
                        json={**body, "userId": self._user_id},
                        timeout=self.timeout,
                        stream=stream,
                        auth=self._auth,
                    ),
                    sleep=self.sleep,
                    log=self._log_retry,
                )
            except requests.RequestException as exc:
                raise self.ANSWERS.transport(exc, service=self.service) from exc
            if resp.status_code < 300:
                return resp
            resp.close()
            # like the Exporter: ANY refusal of the bare form is asked again in the session
            # form (the deployed port_owncloud answers a bare-form listing with 500)
            if attempt == 1 and self._user_id == self.user and self._session_user_id:
                self._user_id = self._session_user_id()
                continue
            break
        where = body.get("filepath", "")
        raise self.ANSWERS.error(resp.status_code, what=where, service=self.service)

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
        resp = self._request("file", {"filepath": path}, stream=True)
        length = resp.headers.get("Content-Length")
        return Download(
            resp.iter_content(CHUNK_SIZE),
            int(length) if length and length.isdigit() else None,
            close=resp.close,
        )


def walk(source: Source, folder: str, limit: int) -> list[str]:
    """Every file below ``folder`` (``/a/b``, ``/`` for the root), named relative to it.

    Reads whatever listing a real fileStorage connector sends: port_owncloud's (recursive,
    relative, files only), the interface document's (absolute, one level, folders ending
    in ``/``, listed in turn), or a mix. An absolute entry below ``folder`` is made
    relative; any other entry is taken as relative to the folder listed (a stray leading
    ``/`` dropped), and one that would climb out of it is refused. At most ``limit`` files.
    """
    root = folder.rstrip("/")
    pending = [""]
    listed: set[str] = set()
    files: dict[str, None] = {}  # insertion-ordered set: a mixed listing may repeat a file
    while pending:
        sub = pending.pop(0)
        if sub in listed:
            continue
        listed.add(sub)
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


def _md5_of(download: Download) -> tuple[int, str]:
    meter = Meter(download.chunks, download.size)
    try:
        for _ in meter:
            pass
    finally:
        if download.close:
            download.close()
    return meter.size, meter.md5


def _transfer_one(
    archive: Archive,
    who: Identity,
    project_id: str,
    source: Source,
    path: str,
    name: str,
    existing: dict[str, Any],
) -> dict[str, Any]:
    entry: dict[str, Any] = {"filename": name, "source": path}
    try:
        download = source.open(path)
        if download.size is not None:  # so a failed file still says how big it was
            entry["size"] = download.size
        known = existing.get(name)
        if known is not None and download.size == known.get("size"):
            size, md5 = _md5_of(download)
            if f"md5:{md5}" == known.get("checksum"):
                return {**entry, "size": size, "md5": md5, "status": "skipped"}
            download = source.open(path)
        upload = Upload(name, download.chunks, size=download.size)
        try:
            stored = archive.store_file(who, project_id, upload)
        finally:
            if download.close:
                download.close()
        checksum = str(stored.get("checksum", ""))
        md5 = checksum.removeprefix("md5:")
        return {**entry, "size": stored.get("size"), "md5": md5, "status": "stored"}
    except ConnectorError as err:
        log.warning("passive.file_failed file=%s status=%d detail=%s", name, err.status, err.detail)
        return {**entry, "status": "failed", "error": err.detail, "errorStatus": err.status}
    except Exception as exc:
        log.warning(
            "passive.file_failed file=%s error=%s",
            name,
            exc.__class__.__name__,
            exc_info=not isinstance(exc, (requests.RequestException, OSError)),
        )
        return {
            **entry,
            "status": "failed",
            "error": f"transfer broke off ({exc.__class__.__name__})",
            "errorStatus": 502,
        }


def _source(runtime: Runtime, who: Identity, service: str, username: str) -> Source:
    settings = runtime.settings
    if service == settings.servicename and runtime.storage is not None:
        return Source(storage=runtime.storage, who=Identity(who.user, who.token, service))
    base = runtime.passive.storage_url_template.replace("{service}", service)

    def session_form() -> str:
        if not settings.port_service_url:
            return username
        token = lookup_token(runtime.session, settings.port_service_url, username, service)
        return f"{service}://{username}:{token}"

    client = StorageClient(
        base,
        username,
        service=service,
        session=runtime.session,
        timeout=(settings.connect_timeout, settings.read_timeout),
        session_user_id=session_form if settings.port_service_url else None,
    )
    return Source(client=client)


def _check_batch(archive: Archive, who: Identity, project_id: str, names: list[str]) -> None:
    """The archive's per-record limits for the whole run, before any byte moves.

    Counts only: the fileStorage listing carries no sizes, and probing each file's size
    first would cost one more request per file (a ``Range: bytes=0-0`` GET, which not
    every storage honours). Each file's size is still checked by the archive's
    ``store_file`` from the download's Content-Length before its first byte is sent.
    """
    archive.check_batch(who, project_id, [(name, None) for name in names])


def pull_folder(
    runtime: Runtime, archive: Archive, who: Identity, project_id: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """Transfer ``fields['folder']`` of ``fields['service']`` into the project; the report
    of every file, or ``TransferIncomplete`` carrying it when any file failed."""
    service = str(fields.get("service") or "")
    if not SERVICE_RE.match(service):
        raise BadRequest("service must be an RDS service name like port-owncloud", field="service")
    # the Exporter strips the trailing '/', so the user's root arrives as ''
    folder = "/" + storage_path(fields.get("folder") or "/", "folder")
    username = str(fields.get("username") or who.user)
    if username != who.user:
        raise Forbidden("username names another user than userId", field="username")
    source = _source(runtime, who, service, username)
    names = walk(source, folder, runtime.passive.max_files)
    paths = [f"{folder.rstrip('/')}/{name}" for name in names]
    _check_batch(archive, who, project_id, names)
    existing = {f["filename"]: f for f in archive.list_files(who, project_id)}
    with ThreadPoolExecutor(max_workers=runtime.passive.concurrency) as pool:
        results = list(
            pool.map(
                lambda pn: _transfer_one(archive, who, project_id, source, pn[0], pn[1], existing),
                zip(paths, names, strict=True),
            )
        )
    failed = [r["filename"] for r in results if r["status"] == "failed"]
    counts = {s: sum(r["status"] == s for r in results) for s in ("stored", "skipped", "failed")}
    log.info(
        "passive.done project=%s service=%s files=%d stored=%d skipped=%d failed=%d",
        project_id,
        service,
        len(results),
        counts["stored"],
        counts["skipped"],
        counts["failed"],
    )
    body = {"success": not failed, "files": results, "failed": failed, "counts": counts}
    if not failed:
        return body
    statuses = {r["errorStatus"] for r in results if r["status"] == "failed"}
    status = statuses.pop() if len(statuses) == 1 else 502
    raise TransferIncomplete(
        f"{len(failed)} of {len(results)} files failed: {', '.join(failed[:20])}",
        status=status if 400 <= status < 500 else 502,
        field="folder",
        extra=body,
    )
