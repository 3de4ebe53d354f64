"""The ``zenodo`` backend: RDS projects as Zenodo depositions (classic API, bucket uploads).

Boundary: RDS semantics on one side (project ids, RO-Crates, relative file paths, the
``Upload`` stream), ``ZenodoClient`` on the other. Metadata crosses through
``common.rocrate`` in both directions; files stream from the request into the deposition's
bucket through a ``Meter`` that counts and hashes them, and the MD5 is compared with the
checksum Zenodo answers. See docs/zenodo.md for the key mapping, limits and faults.

File keys: Zenodo's names are flat, RDS sends relative paths. ``to_key`` escapes ``%`` as
``%25`` and then ``/`` as ``%2F``; ``from_key`` undoes both in one pass. Escaping the
escape character makes the mapping injective (``a/b`` and ``a%2Fb`` stay apart) and
reversible, and RDS only ever sees the original paths as file ids and names.
"""

from __future__ import annotations

import base64
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from common import outside, rocrate
from common.backends.base import Json, LoginFailed
from common.config import Settings, load_declared, setting
from common.errors import (
    BadRequest,
    Conflict,
    ConnectorError,
    NotFound,
    PayloadTooLarge,
    UnprocessableContent,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from common.identity import Identity
from common.paths import archive_name, relative_path
from common.retry import Policy
from common.streams import Meter, SizedMeter, Upload, iter_file
from common.useragent import USER_AGENT
from common.zenodo_client import (
    SCOPE_ACTIONS,
    SCOPE_WRITE,
    ZenodoClient,
    ZenodoValidationError,
    is_published,
)

log = logging.getLogger("rds.zenodo")

DEFAULT_ADDRESS = "https://sandbox.zenodo.org"
MAX_FILES = 100
MAX_RECORD_BYTES = 50 * 1000**3  # Zenodo's 50 GB per record
MAX_KEY_BYTES = 255  # InvenioRDM's FILES_REST_OBJECT_KEY_MAX_LEN
_DOWN = (UpstreamUnavailable, UpstreamTimeout, UpstreamError)  # login tries again on these
_UNESCAPE = re.compile(r"%(25|2F)", re.IGNORECASE)
_ICON_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<circle cx="8" cy="8" r="7" fill="#1f78b4"/>'
    b'<path d="M5 5h6L5 11h6" stroke="#fff" stroke-width="1.5" fill="none"/></svg>'
)
ZENODO_ICON = "data:image/svg+xml;base64," + base64.b64encode(_ICON_SVG).decode()


def to_key(path: str) -> str:
    """Flat Zenodo key for a relative path: ``%`` -> ``%25``, then ``/`` -> ``%2F``."""
    return path.replace("%", "%25").replace("/", "%2F")


def from_key(key: str) -> str:
    """The relative path of a key made by ``to_key`` (one pass, so it is exact)."""
    return _UNESCAPE.sub(lambda m: "%" if m[1] == "25" else "/", key)


def _entry(path: str, size: Any, checksum: Any) -> Json:
    checksum = str(checksum or "")
    if checksum and ":" not in checksum:
        checksum = f"md5:{checksum}"
    return {"id": path, "filename": path, "size": int(size or 0), "checksum": checksum}


def _bucket_entry(obj: Json) -> Json:
    return _entry(from_key(str(obj.get("key", ""))), obj.get("size"), obj.get("checksum"))


def _classic_entry(obj: Json) -> Json:
    return _entry(from_key(str(obj.get("filename", ""))), obj.get("filesize"), obj.get("checksum"))


@dataclass(frozen=True)
class ZenodoSettings:
    """What the Zenodo backend reads from the configuration, checked when it is built."""

    address: str = setting("ZENODO_ADDRESS", "host_url", DEFAULT_ADDRESS)
    client_id: str = setting("ZENODO_OAUTH_CLIENT_ID", required=True)
    client_secret: str = setting("ZENODO_OAUTH_CLIENT_SECRET", required=True, secret=True)
    redirect_uri: str = setting("RDS_OAUTH_REDIRECT_URI", required=True)
    display_name: str | None = setting("ZENODO_DISPLAYNAME")
    info_url: str | None = setting("ZENODO_INFO_URL")
    help_url: str | None = setting("ZENODO_HELP_URL")
    icon: str | None = setting("ZENODO_ICON")
    project_link_template: str | None = setting("ZENODO_PROJECT_LINK_TEMPLATE")


_ROUTE_METHODS = (
    "list_projects",
    "create_project",
    "get_project",
    "update_project",
    "publish_project",
    "delete_project",
    "list_files",
    "store_file",
    "delete_files",
    "get_file",
    "update_file",
    "delete_file",
    "check_batch",
)


def _answers_read_safely(cls: type) -> type:
    """Wrap each route method: an answer of Zenodo's that lacks a field or has one of the
    wrong type (``KeyError``, ``TypeError``, ``ValueError``, ``AttributeError`` while we read
    it) is a 502 problem, not a bare 500. Our own checks raise ``ConnectorError`` subclasses,
    which pass through unchanged."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning(
                    "zenodo.answer_unreadable method=%s error=%s",
                    method.__name__,
                    exc.__class__.__name__,
                    exc_info=True,
                )
                raise UpstreamError("Zenodo answered in a shape the connector cannot read") from exc

        wrapper.__name__ = method.__name__
        wrapper.__doc__ = method.__doc__
        return wrapper

    for name in _ROUTE_METHODS:
        if hasattr(cls, name):
            setattr(cls, name, wrap(getattr(cls, name)))
    return cls


@_answers_read_safely
class ZenodoArchive:
    """Metadata interface on Zenodo depositions; one instance serves every user."""

    needs_token = True

    @property
    def max_files(self) -> int:
        return MAX_FILES  # read when asked, so tests can lower MAX_FILES

    def __init__(
        self,
        address: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        *,
        info: Json | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        login_attempts: int = 5,
    ) -> None:
        self.address = address.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.info = info or {}
        self.session = session or outside.session("zenodo")
        self.session.headers["User-Agent"] = USER_AGENT
        self.sleep = sleep
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.login_attempts = login_attempts

    def __repr__(self) -> str:
        return f"ZenodoArchive({self.address!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> ZenodoArchive:
        """Build from ``ZENODO_*`` and ``RDS_OAUTH_REDIRECT_URI``; ConfigError names a gap."""
        own = load_declared(ZenodoSettings, settings)
        session = outside.session("zenodo", verify=settings.verify_ssl)
        return cls(
            own.address,
            own.client_id,
            own.client_secret,
            own.redirect_uri,
            info={
                "displayName": own.display_name,
                "infoUrl": own.info_url,
                "helpUrl": own.help_url,
                "icon": own.icon,
                "projectLinkTemplate": own.project_link_template,
            },
            session=session,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )

    def client(self, who: Identity | None) -> ZenodoClient:
        """A client for ``who`` (``None``: unauthenticated, for the login check)."""
        return ZenodoClient(
            self.address,
            who.require_token() if who is not None else None,
            session=self.session,
            sleep=self.sleep,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )

    # -- init --------------------------------------------------------------------------
    def login(self) -> None:
        """Zenodo's deposition API answers (401 without a token counts), bounded retries."""
        policy = Policy(attempts=self.login_attempts, base=0.5, cap=8.0, exceptions=_DOWN)

        def ping() -> int:
            status = self.client(None).ping()
            if status not in (200, 401, 403, 404):
                raise UpstreamError(f"status {status}")
            return status

        try:
            status = policy.run(ping, sleep=self.sleep)
        except _DOWN as exc:
            raise LoginFailed(f"Zenodo at {self.address} did not answer ({exc.detail})") from exc
        if status == 404:
            raise LoginFailed(f"{self.address} has no Zenodo deposition API (404)")
        log.info("zenodo.login ok address=%s status=%d", self.address, status)

    def registration_fields(self) -> Json:
        scope = "deposit%3Awrite+deposit%3Aactions"
        redirect = quote(self.redirect_uri, safe="")
        return {
            "authorize_url": (
                f"{self.address}/oauth/authorize?response_type=code&scope={scope}"
                f"&redirect_uri={redirect}&client_id={quote(self._client_id, safe='')}"
            ),
            "refresh_url": f"{self.address}/oauth/token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }

    def service_info(self) -> Json:
        return {
            "displayName": self.info.get("displayName") or "Zenodo",
            "description": {
                "en": "Publish research data on Zenodo with a DOI.",
                "de": "Forschungsdaten auf Zenodo mit einer DOI veroeffentlichen.",
            },
            "icon": self.info.get("icon") or ZENODO_ICON,
            "infoUrl": self.info.get("infoUrl") or "https://zenodo.org",
            "helpUrl": self.info.get("helpUrl") or "https://help.zenodo.org",
            "projectLinkTemplate": self.info.get("projectLinkTemplate")
            or f"{self.address}/records/${{projectId}}",
        }

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _project_id(project_id: str) -> str:
        if not project_id.isdigit():
            raise NotFound(f"no project {project_id!r}: Zenodo ids are numbers", field="projectId")
        return project_id

    def _deposition(self, zc: ZenodoClient, project_id: str) -> Json:
        try:
            return zc.get_deposition(self._project_id(project_id))
        except NotFound as exc:
            raise NotFound(f"no project {project_id!r} on Zenodo", field="projectId") from exc

    def _draft(self, zc: ZenodoClient, project_id: str) -> Json:
        dep = self._deposition(zc, project_id)
        if is_published(dep):
            raise Conflict(
                "the project is published on Zenodo and can no longer change", field="projectId"
            )
        return dep

    @staticmethod
    def _named(exc: ZenodoValidationError) -> BadRequest:
        """Zenodo's field errors, named by the RO-Crate property at fault."""
        names = []
        for zfield, message in exc.errors:
            if zfield.split(".")[0] == "files":  # a state of the record, not of the crate
                prop = "files"
            else:
                prop = rocrate.crate_property_for(zfield) if zfield else "metadata"
            names.append((prop, f"{prop}: {message}"))
        if not names:
            return BadRequest(exc.detail, field="metadata")
        return BadRequest(
            "Zenodo refused the request: " + "; ".join(text for _, text in names),
            field=names[0][0],
            extra={"errors": [{"field": p, "message": t} for p, t in names]},
        )

    def _files_of(self, dep: Json) -> list[Json]:
        return [_classic_entry(f) for f in dep.get("files") or [] if isinstance(f, dict)]

    def _crate(self, dep: Json, files: list[Json] | None = None) -> Json:
        metadata = dep.get("metadata")
        return rocrate.zenodo_to_crate(metadata if isinstance(metadata, dict) else {}, files=files)

    # -- projects ----------------------------------------------------------------------
    def list_projects(self, who: Identity) -> list[Json]:
        return [
            {"projectId": str(dep["id"]), "metadata": self._crate(dep, self._files_of(dep))}
            for dep in self.client(who).list_depositions()
        ]

    def create_project(self, who: Identity, metadata: Json | None) -> Json:
        mapped = rocrate.crate_to_zenodo(metadata) if metadata is not None else None
        try:
            dep = self.client(who).create_deposition(mapped)
        except ZenodoValidationError as exc:
            raise self._named(exc) from exc
        log.info("zenodo.project.created id=%s", dep.get("id"))
        return {"projectId": str(dep["id"]), "metadata": self._crate(dep)}

    def get_project(self, who: Identity, project_id: str) -> Json:
        dep = self._deposition(self.client(who), project_id)
        return self._crate(dep, self._files_of(dep))

    def update_project(self, who: Identity, project_id: str, metadata: Json | None) -> Json:
        zc = self.client(who)
        if metadata is None:
            dep = self._deposition(zc, project_id)
            return self._crate(dep, self._files_of(dep))
        mapped = rocrate.crate_to_zenodo(metadata)
        self._draft(zc, project_id)
        try:
            dep = zc.update_deposition(project_id, mapped)
        except ZenodoValidationError as exc:
            raise self._named(exc) from exc
        return self._crate(dep, self._files_of(dep))

    def publish_project(self, who: Identity, project_id: str) -> str:
        """Publish (a published project answers its DOI again); returns the DOI."""
        zc = self.client(who)
        dep = self._deposition(zc, project_id)
        if not is_published(dep):
            try:
                dep = zc.publish(project_id)
            except ZenodoValidationError as exc:
                raise self._named(exc) from exc
        doi = dep.get("doi") or (dep.get("metadata") or {}).get("doi")
        if not doi:
            raise UpstreamError("Zenodo published the record but answered no DOI")
        log.info("zenodo.project.published id=%s doi=%s", project_id, doi)
        return str(doi)

    def delete_project(self, who: Identity, project_id: str) -> None:
        zc = self.client(who)
        self._draft(zc, project_id)
        zc.delete_deposition(project_id)

    # -- files -------------------------------------------------------------------------
    def _bucket(self, dep: Json) -> str:
        bucket = (dep.get("links") or {}).get("bucket")
        if not bucket:
            raise UpstreamError("Zenodo answered a draft without a bucket link")
        return str(bucket)

    def _listing(self, zc: ZenodoClient, dep: Json) -> list[Json]:
        """Entries of the deposition's files: from its bucket if it has one (drafts)."""
        if (dep.get("links") or {}).get("bucket"):
            return [_bucket_entry(o) for o in zc.list_bucket(self._bucket(dep))]
        return self._files_of(dep)

    def list_files(self, who: Identity, project_id: str) -> list[Json]:
        zc = self.client(who)
        return sorted(self._listing(zc, self._deposition(zc, project_id)), key=lambda e: e["id"])

    def get_file(self, who: Identity, project_id: str, file_id: str) -> Json:
        for entry in self.list_files(who, project_id):
            if entry["id"] == file_id:
                return entry
        raise NotFound(f"no file {file_id!r} in this project", field="fileId")

    def store_file(self, who: Identity, project_id: str, upload: Upload) -> Json:
        """Stream one file into the draft's bucket and verify its MD5 against Zenodo's."""
        path = relative_path(upload.filename, "filename")
        key = to_key(path)
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise BadRequest(
                f"{path!r} becomes a Zenodo name over {MAX_KEY_BYTES} bytes", field="filename"
            )
        zc = self.client(who)
        bucket = self._bucket(self._draft(zc, project_id))
        present = {str(o.get("key")): int(o.get("size") or 0) for o in zc.list_bucket(bucket)}
        body, size = _sized_body(upload)
        _check_limits(path, key, size, present)
        try:
            answer = zc.put_object(bucket, key, body, size)
        except Exception:
            # The body may have arrived whole before the answer was lost (or before our own
            # stream turned out longer than announced): a failure must not
            # leave the file in the record. A key that existed before is left alone (its
            # delete would lose the user's earlier version).
            if key not in present:
                _discard(zc, bucket, key)
            raise
        remote = str(answer.get("checksum") or "")
        if remote != f"md5:{body.md5}" or int(answer.get("size") or -1) != body.size:
            _discard(zc, bucket, key)
            raise UpstreamError(
                f"{path!r} arrived damaged at Zenodo (checksum {remote or 'missing'}, "
                f"sent md5:{body.md5}); the remote copy was deleted",
                field="file",
                extra={"notStored": [path]},
            )
        log.info("zenodo.upload.done id=%s size=%d md5=%s", project_id, body.size, body.md5)
        return _entry(path, body.size, remote)

    def check_batch(
        self, who: Identity, project_id: str, entries: list[tuple[str, int | None]]
    ) -> None:
        """Refuse a batch the record cannot hold (file count, known bytes) before any byte.

        Paths already in the record are replaced, so they count once; sizes that are
        ``None`` count as 0 here and are checked per file by ``store_file``.
        """
        zc = self.client(who)
        bucket = self._bucket(self._draft(zc, project_id))
        present = {str(o.get("key")): int(o.get("size") or 0) for o in zc.list_bucket(bucket)}
        batch = {to_key(relative_path(name, "filename")): size for name, size in entries}
        new = [from_key(k) for k in batch if k not in present]
        if len(present) + len(new) > MAX_FILES:
            raise Conflict(
                f"the Zenodo record holds {len(present)} files and this transfer adds "
                f"{len(new)} more; Zenodo allows {MAX_FILES} per record, so nothing was "
                "transferred (zip folders to send more)",
                field="folder",
                extra={"notStored": sorted(from_key(k) for k in batch)},
            )
        kept = sum(s for k, s in present.items() if k not in batch)
        known = sum(s or 0 for s in batch.values())
        if kept + known > MAX_RECORD_BYTES:
            raise PayloadTooLarge(
                f"the transfer would take the Zenodo record to {kept + known} bytes, past "
                "Zenodo's 50 GB; nothing was transferred",
                field="folder",
                extra={"notStored": sorted(from_key(k) for k in batch)},
            )

    def update_file(self, who: Identity, project_id: str, file_id: str, changes: Json) -> Json:
        """Rename (``filename``/``newfilename``) through the classic files API."""
        zc = self.client(who)
        dep = self._draft(zc, project_id)
        current = {e["id"]: e for e in self._listing(zc, dep)}
        if file_id not in current:
            raise NotFound(f"no file {file_id!r} in this project", field="fileId")
        new = changes.get("filename") or changes.get("newfilename")
        if new is None or new == file_id:
            return current[file_id]
        new = archive_name(new, "filename")
        if new in current:
            raise Conflict(f"a file named {new!r} exists already", field="filename")
        if len(to_key(new).encode("utf-8")) > MAX_KEY_BYTES:
            raise BadRequest(f"{new!r} is too long for Zenodo", field="filename")
        zid = next(
            (
                str(f["id"])
                for f in zc.list_files(project_id)
                if f.get("filename") == to_key(file_id)
            ),
            None,
        )
        if zid is None:
            raise NotFound(f"no file {file_id!r} in this project", field="fileId")
        renamed = zc.rename_file(project_id, zid, to_key(new))
        return {**_classic_entry(renamed), "size": current[file_id]["size"]}

    def delete_file(self, who: Identity, project_id: str, file_id: str) -> None:
        zc = self.client(who)
        bucket = self._bucket(self._draft(zc, project_id))
        try:
            zc.delete_object(bucket, to_key(relative_path(file_id, "fileId")))
        except NotFound as exc:
            raise NotFound(f"no file {file_id!r} in this project", field="fileId") from exc

    def delete_files(self, who: Identity, project_id: str) -> None:
        """Delete every file; a failure names the files that are still there."""
        zc = self.client(who)
        bucket = self._bucket(self._draft(zc, project_id))
        keys = [str(o["key"]) for o in zc.list_bucket(bucket)]
        for done, key in enumerate(keys):
            try:
                zc.delete_object(bucket, key)
            except NotFound:
                continue
            except ConnectorError as exc:
                exc.extra["notDeleted"] = [from_key(k) for k in keys[done:]]
                raise


def _sized_body(upload: Upload) -> tuple[Meter, int]:
    """A body of known size for Zenodo: exact size, verified hint, or a disk spool."""
    if upload.size is not None:
        return upload.meter(), upload.size
    if upload.size_hint is not None:
        return upload.meter(hinted=True), upload.size_hint
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the body is exhausted
    size = 0
    try:
        for chunk in upload.chunks:
            spool.write(chunk)
            size += len(chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def chunks() -> Iterator[bytes]:
        with spool:
            yield from iter_file(spool)

    return SizedMeter(chunks(), size), size


def _check_limits(path: str, key: str, size: int, present: dict[str, int]) -> None:
    """Zenodo's per-record limits, refused before a byte is sent."""
    if size == 0:
        raise UnprocessableContent(
            f"{path!r} is empty and Zenodo refuses empty files; it was not uploaded",
            field="file",
            extra={"notStored": [path]},
        )
    others = {k: s for k, s in present.items() if k != key}
    if len(others) + 1 > MAX_FILES:
        raise Conflict(
            f"the Zenodo record holds {len(others)} files and allows {MAX_FILES}: "
            f"{path!r} was not uploaded; to send more, let the connector pull the folder "
            "(passive transfer, fileTransferMode 1: it zips subfolders to fit) or send "
            "folders as zip files (fileTransferArchive 1)",
            field="file",
            extra={"notStored": [path]},
        )
    if sum(others.values()) + size > MAX_RECORD_BYTES:
        raise PayloadTooLarge(
            f"{path!r} would take the record past Zenodo's 50 GB; it was not uploaded",
            field="file",
            extra={"notStored": [path]},
        )


def _discard(zc: ZenodoClient, bucket: str, key: str) -> None:
    try:
        zc.delete_object(bucket, key)
    except NotFound:
        return  # nothing arrived: nothing to remove
    except ConnectorError:  # the 502 below says what happened; a leftover is logged
        log.error("zenodo.upload.discard_failed key_bytes=%d", len(key))


__all__ = ["SCOPE_ACTIONS", "SCOPE_WRITE", "ZenodoArchive", "from_key", "to_key"]
