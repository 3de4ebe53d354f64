"""The ``zenodo`` backend: RDS projects as Zenodo depositions (classic API, bucket uploads).

Boundary: RDS semantics on one side (project ids, RO-Crates, relative file paths, the
``Upload`` stream), ``ZenodoClient`` on the other. Metadata crosses through
``common.rocrate`` in both directions; files stream from the request into the deposition's
bucket through a ``Meter`` that counts and hashes them, and the MD5 is compared with the
checksum Zenodo answers. See docs/zenodo.md for the key mapping, limits and faults.

Split by concern: ``zenodo_keys`` (path <-> key, entries), ``zenodo_files`` (replayable
bodies, the draft cache, locks), ``zenodo_upload`` (one PUT, reconciled, clean-up by
ownership), ``zenodo_crate`` (the record's crate, publish rules, create tags). Under
Zenodo's rate limit a steady stream of uploads costs one request per file: the draft's
bucket and listing are cached per (token, project) and the PUT's answer confirms.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import requests

from common import outside, rocrate
from common.backends.base import Json, LoginFailed, display_info, service_info, svg_icon
from common.backends.repository import RepositoryArchive
from common.backends.zenodo_crate import (
    CRATE_KEY,
    crate_bytes,
    create_tag,
    parse_crate,
    publish_problems,
    tag_of,
    tagged,
    untagged,
    with_files,
)
from common.backends.zenodo_files import (
    Body,
    Draft,
    DraftCache,
    KeyLocks,
    MiB,
    bytes_body,
    sized_body,
)
from common.backends.zenodo_keys import (
    answers_read_safely,
    bucket_entry,
    classic_entry,
    entry,
    from_key,
    md5_checksum,
    to_key,
)
from common.backends.zenodo_upload import (
    check_batch_limits,
    check_limits,
    create_once,
    find_tagged,
    put_file,
)
from common.config import Settings, load_declared, setting
from common.errors import (
    BadRequest,
    Conflict,
    ConnectorError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UpstreamError,
)
from common.identity import Identity
from common.paths import archive_name, relative_path
from common.retry import token_key
from common.streams import Upload
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
MAX_CRATE_BYTES = 16 * MiB  # a crate read back from the bucket at publish
_ICON_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<circle cx="8" cy="8" r="7" fill="#1f78b4"/>'
    b'<path d="M5 5h6L5 11h6" stroke="#fff" stroke-width="1.5" fill="none"/></svg>'
)
ZENODO_ICON = svg_icon(_ICON_SVG)


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
    # the first MiBs of each upload kept on disk so a 429/5xx/reset can be retried
    replay_window_mib: int = setting("ZENODO_REPLAY_WINDOW_MIB", "int", 8, hi=4096)
    # the longest Retry-After (and rate-limit reset) waited out before answering 429/503
    max_retry_after: int = setting("ZENODO_MAX_RETRY_AFTER", "int", 60, hi=3600)
    # uploads without a size are spooled to disk up to this, refused (413) above it
    spool_limit_mib: int = setting("ZENODO_SPOOL_LIMIT_MIB", "int", 2048, lo=1)


@answers_read_safely
class ZenodoArchive(RepositoryArchive[ZenodoClient]):
    """Metadata interface on Zenodo depositions; one instance serves every user."""

    needs_token = True
    client_class = ZenodoClient

    @property
    def max_files(self) -> int:
        # read when asked, so tests can lower MAX_FILES; one slot stays the record's crate
        return MAX_FILES - 1

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
        replay_window: int = 8 * MiB,
        max_wait: float = 60.0,
        spool_limit: int = 2048 * MiB,
        cache_ttl: float = 60.0,
    ) -> None:
        self._transport(
            address,
            info,
            session or outside.session("zenodo"),
            sleep=sleep,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            login_attempts=login_attempts,
        )
        self._client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.replay_window = replay_window
        self.max_wait = max_wait
        self.spool_limit = spool_limit
        self.drafts = DraftCache(ttl=cache_ttl)  # bucket link + listing per (token, project)
        self.key_locks = KeyLocks()  # one upload per (bucket, key) in this process
        self.project_locks = KeyLocks()  # one publish per (token, project) in this process

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
            info=display_info(own),
            session=session,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            replay_window=own.replay_window_mib * MiB,
            max_wait=float(own.max_retry_after),
            spool_limit=own.spool_limit_mib * MiB,
        )

    def _ck(self, who: Identity, project_id: str) -> tuple[str, str]:
        """The cache key of a user's project (the token only as a hash)."""
        return token_key(self.address, who.require_token()), project_id

    # -- init --------------------------------------------------------------------------
    def login(self) -> None:
        """Zenodo's deposition API answers (401 without a token counts), bounded retries."""
        status = self._answering(
            lambda s: s in (200, 401, 403, 404), f"Zenodo at {self.address} did not answer"
        )
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
        return service_info(
            self.info.get("displayName") or "Zenodo",
            "Publish research data on Zenodo with a DOI.",
            "Forschungsdaten auf Zenodo mit einer DOI veroeffentlichen.",
            self.info.get("icon") or ZENODO_ICON,
            infoUrl=self.info.get("infoUrl") or "https://zenodo.org",
            helpUrl=self.info.get("helpUrl") or "https://help.zenodo.org",
            projectLinkTemplate=self.info.get("projectLinkTemplate")
            or f"{self.address}/records/${{projectId}}",
        )

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
        return [classic_entry(f) for f in dep.get("files") or [] if isinstance(f, dict)]

    def _crate(self, dep: Json, files: list[Json] | None = None) -> Json:
        metadata: Json = dep["metadata"] if isinstance(dep.get("metadata"), dict) else {}
        return rocrate.zenodo_to_crate(metadata, files=files)

    # -- projects ----------------------------------------------------------------------
    def list_projects(self, who: Identity) -> list[Json]:
        return [
            {"projectId": str(dep["id"]), "metadata": self._crate(dep, self._files_of(dep))}
            for dep in self.client(who).list_depositions()
        ]

    def create_project(
        self, who: Identity, metadata: Json | None, *, idempotency_key: str | None = None
    ) -> Json:
        """Create a draft, at most once per ``idempotency_key`` (and per lost answer)."""
        zc = self.client(who)
        mapped = rocrate.crate_to_zenodo(metadata) if metadata is not None else None
        tag = create_tag(self.address, who.user, idempotency_key)
        dep = find_tagged(zc, tag) if idempotency_key else None
        if dep is not None:
            log.info("zenodo.project.replayed id=%s", dep.get("id"))
        else:
            try:
                dep = create_once(zc, tagged(mapped, tag), tag, sleep=self.sleep)
            except ZenodoValidationError as exc:
                raise self._named(exc) from exc
            log.info("zenodo.project.created id=%s", dep.get("id"))
        return {"projectId": str(dep["id"]), "metadata": self._crate(dep)}

    def get_project(self, who: Identity, project_id: str) -> Json:
        dep = self._deposition(self.client(who), project_id)
        return self._crate(dep, self._files_of(dep))

    def update_project(self, who: Identity, project_id: str, metadata: Json | None) -> Json:
        """Replace the draft's metadata and store the crate as given (with its files)."""
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
        files = self._files_of(dep)
        if len(files) < MAX_FILES or CRATE_KEY in {f["id"] for f in files}:
            self._put_crate(zc, self._ck(who, project_id), self._bucket(dep), metadata, files)
        else:
            log.warning("zenodo.crate.skipped id=%s reason=record_full", project_id)
        return self._crate(dep, files)

    def _put_crate(
        self, zc: ZenodoClient, ck: tuple[str, str], bucket: str, crate: Json, files: list[Json]
    ) -> None:
        """Write ``ro-crate-metadata.json``: ``crate`` plus a File entity per key."""
        body = bytes_body(crate_bytes(with_files(crate, files)))
        try:
            with self.key_locks.hold((bucket, CRATE_KEY)):
                answer = zc.put_object(bucket, CRATE_KEY, body, body.size)
        finally:
            body.close()
        draft = self.drafts.get(ck)
        if draft is not None:
            self.drafts.settle(draft, CRATE_KEY, (body.size, str(answer.get("checksum"))))

    def publish_project(self, who: Identity, project_id: str) -> str:
        """Publish (a published project answers its DOI again); returns the DOI.

        Concurrent publishes of one record all answer its DOI: one at a time per process,
        and a refusal is checked against the record's state (another worker may have won).
        """
        zc = self.client(who)
        ck = self._ck(who, project_id)
        with self.project_locks.hold(ck):
            dep = self._deposition(zc, project_id)
            if not is_published(dep):
                dep = self._publish(zc, ck, project_id, dep)
        self.drafts.drop(ck)
        doi = dep.get("doi") or (dep.get("metadata") or {}).get("doi")
        if not doi:
            raise UpstreamError("Zenodo published the record but answered no DOI")
        log.info("zenodo.project.published id=%s doi=%s", project_id, doi)
        return str(doi)

    def _publish(self, zc: ZenodoClient, ck: tuple[str, str], project_id: str, dep: Json) -> Json:
        metadata: Json = dep["metadata"] if isinstance(dep.get("metadata"), dict) else {}
        publish_problems(metadata)
        files = self._files_of(dep)
        names = {f["id"] for f in files}
        if CRATE_KEY not in names and len(names) >= MAX_FILES:
            raise Conflict(
                f"the record holds {len(names)} files, Zenodo's maximum, and no room is left "
                f"for its {CRATE_KEY}: remove one file (or zip some) before publishing",
                field="files",
            )
        try:
            bucket = self._bucket(dep)
            stored = (
                zc.get_object(bucket, CRATE_KEY, MAX_CRATE_BYTES) if CRATE_KEY in names else None
            )
            crate = parse_crate(stored) or self._crate(dep)
            self._put_crate(zc, ck, bucket, crate, files)
            if tag_of(metadata):
                zc.update_deposition(project_id, untagged(metadata))
            return zc.publish(project_id)
        except (ZenodoValidationError, Conflict, Forbidden) as exc:
            current = zc.get_deposition(project_id)
            if is_published(current):  # another request published it meanwhile
                log.info("zenodo.publish.concurrent id=%s", project_id)
                return current
            if isinstance(exc, ZenodoValidationError):
                raise self._named(exc) from exc
            raise

    def delete_project(self, who: Identity, project_id: str) -> None:
        zc = self.client(who)
        self._draft(zc, project_id)
        zc.delete_deposition(project_id)
        self.drafts.drop(self._ck(who, project_id))

    # -- files -------------------------------------------------------------------------
    def _bucket(self, dep: Json) -> str:
        bucket = (dep.get("links") or {}).get("bucket")
        if not bucket:
            raise UpstreamError("Zenodo answered a draft without a bucket link")
        return str(bucket)

    def _listing(self, zc: ZenodoClient, dep: Json) -> list[Json]:
        """Entries of the deposition's files: from its bucket if it has one (drafts)."""
        if (dep.get("links") or {}).get("bucket"):
            return [bucket_entry(o) for o in zc.list_bucket(self._bucket(dep))]
        return self._files_of(dep)

    def _draft_state(self, zc: ZenodoClient, ck: tuple[str, str], project_id: str) -> Draft:
        """The cached draft, or one read now (one GET: the deposition lists its files)."""
        draft = self.drafts.get(ck)
        if draft is not None:
            return draft
        dep = self._draft(zc, project_id)
        objects = [
            {"key": f.get("filename"), "size": f.get("filesize"), "checksum": md5_checksum(f)}
            for f in dep.get("files") or []
            if isinstance(f, dict)
        ]
        return self.drafts.put(ck, self._bucket(dep), objects)

    def list_files(self, who: Identity, project_id: str) -> list[Json]:
        zc = self.client(who)
        return sorted(self._listing(zc, self._deposition(zc, project_id)), key=lambda e: e["id"])

    def get_file(self, who: Identity, project_id: str, file_id: str) -> Json:
        for found in self.list_files(who, project_id):
            if found["id"] == file_id:
                return found
        raise NotFound(f"no file {file_id!r} in this project", field="fileId")

    def store_file(self, who: Identity, project_id: str, upload: Upload) -> Json:
        """Stream one file into the draft's bucket: one Zenodo request in steady state
        (the PUT, whose answer is the confirmation); see ``zenodo_upload``."""
        path = relative_path(upload.filename, "filename")
        key = to_key(path)
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise BadRequest(
                f"{path!r} becomes a Zenodo name over {MAX_KEY_BYTES} bytes", field="filename"
            )
        zc = self.client(who)
        ck = self._ck(who, project_id)
        draft = self._draft_state(zc, ck, project_id)
        body = sized_body(
            upload, window=self.replay_window, spool_limit=self.spool_limit, path=path
        )
        try:
            with self.key_locks.hold((draft.bucket, key)):
                self.drafts.reserve(draft, key, body.size, self._limits(path, key, body.size))
                stored: tuple[int, str] | None = None
                try:
                    stored = self._put(zc, ck, project_id, draft, key, path, body)
                finally:
                    self.drafts.settle(draft, key, stored)
        finally:
            body.close()
        log.info("zenodo.upload.done id=%s size=%d md5=%s", project_id, stored[0], body.md5)
        return entry(path, stored[0], stored[1])

    @staticmethod
    def _limits(path: str, key: str, size: int) -> Callable[[dict[str, int]], None]:
        def check(others: dict[str, int]) -> None:
            check_limits(
                path,
                key,
                size,
                others,
                crate_key=CRATE_KEY,
                max_files=MAX_FILES,
                max_bytes=MAX_RECORD_BYTES,
            )

        return check

    def _put(
        self,
        zc: ZenodoClient,
        ck: tuple[str, str],
        project_id: str,
        draft: Draft,
        key: str,
        path: str,
        body: Body,
    ) -> tuple[int, str]:
        try:
            return put_file(zc, draft.bucket, key, path, body, sleep=self.sleep)
        except (Forbidden, NotFound):
            # The cached bucket may be stale (published or deleted meanwhile): the fresh
            # state says which (409 published, 404 gone); otherwise the refusal stands.
            self.drafts.drop(ck)
            self._draft(zc, project_id)
            raise
        except (Conflict, PayloadTooLarge, BadRequest):
            self.drafts.drop(ck)  # Zenodo's limits disagreed with our view: read it again
            raise

    def check_batch(
        self, who: Identity, project_id: str, entries: list[tuple[str, int | None]]
    ) -> None:
        """Refuse a batch the record cannot hold (file count, known bytes) before any byte.

        Paths already in the record are replaced, so they count once; sizes that are
        ``None`` count as 0 here and are checked per file by ``store_file``. The record
        keeps one slot for its crate. The fresh state also refills the draft cache.
        """
        zc = self.client(who)
        ck = self._ck(who, project_id)
        self.drafts.drop(ck)
        draft = self._draft_state(zc, ck, project_id)
        present = {k: size for k, (size, _) in draft.files.items()}
        batch = {to_key(relative_path(name, "filename")): size for name, size in entries}
        check_batch_limits(
            present, batch, crate_key=CRATE_KEY, max_files=MAX_FILES, max_bytes=MAX_RECORD_BYTES
        )

    def update_file(self, who: Identity, project_id: str, file_id: str, changes: Json) -> Json:
        """Rename (``filename``/``newfilename``) through the classic files API."""
        zc = self.client(who)
        self.drafts.drop(self._ck(who, project_id))
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
        return {**classic_entry(renamed), "size": current[file_id]["size"]}

    def delete_file(self, who: Identity, project_id: str, file_id: str) -> None:
        zc = self.client(who)
        self.drafts.drop(self._ck(who, project_id))
        bucket = self._bucket(self._draft(zc, project_id))
        try:
            zc.delete_object(bucket, to_key(relative_path(file_id, "fileId")))
        except NotFound as exc:
            raise NotFound(f"no file {file_id!r} in this project", field="fileId") from exc

    def delete_files(self, who: Identity, project_id: str) -> None:
        """Delete every file; a failure names the files that are still there."""
        zc = self.client(who)
        self.drafts.drop(self._ck(who, project_id))
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


__all__ = ["SCOPE_ACTIONS", "SCOPE_WRITE", "ZenodoArchive", "from_key", "to_key"]
