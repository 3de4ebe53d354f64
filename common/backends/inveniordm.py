"""The ``inveniordm`` backend: RDS projects as InvenioRDM drafts and records (records API).

Boundary: RDS semantics on one side (project ids, RO-Crates, relative file paths, the
``Upload`` stream), ``InvenioRDMClient`` on the other. Metadata crosses through
``common.rocrate.inveniordm``; files take InvenioRDM's three steps (init the key, stream
the content with an exact ``Content-Length``, commit) through a ``Meter``, and the MD5 is
compared with the commit's checksum. A failed step deletes the key: no pending or half
file is left. Keys are the relative paths themselves (InvenioRDM routes keys as paths,
so ``a/b.csv`` stays ``a/b.csv``). See docs/inveniordm.md for settings, registration,
community mode, the 403 mapping, rename and limits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from common import outside
from common.backends.base import Json, LoginFailed, display_info, service_info, svg_icon
from common.backends.repository import RepositoryArchive
from common.backends.zenodo_files import Body, sized_body
from common.config import Settings, load_declared, setting
from common.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    ConnectorError,
    NotFound,
    PayloadTooLarge,
    UpstreamError,
)
from common.identity import Identity
from common.inveniordm_client import InvenioRDMClient, InvenioValidationError
from common.paths import archive_name
from common.retry import token_key
from common.rocrate.inveniordm import (
    crate_property_for,
    crate_to_inveniordm,
    field_of_value,
    inveniordm_to_crate,
)
from common.streams import CHUNK_SIZE, Upload

log = logging.getLogger("rds.inveniordm")

MAX_FILES = 100  # RECORDS_RESOURCES_FILES_MAX_FILES_COUNT's default
MAX_RECORD_BYTES = 10 * 1000**3  # RDM_FILES_DEFAULT_QUOTA_SIZE's default
MAX_KEY_CHARS = 255  # FILES_REST_OBJECT_KEY_MAX_LEN
SERVICE_KEY = "inveniordm"
SPOOL_LIMIT = 2 * 1024**3  # an upload of unknown size is spooled to disk up to this (413 above)
MISSING = "Missing data for required field."  # a draft may lack these until publish
_ICON_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<rect x="1" y="1" width="14" height="14" rx="3" fill="#0b5394"/>'
    b'<path d="M5 4v8M8 4v8M11 4v8" stroke="#fff" stroke-width="1.5"/></svg>'
)
INVENIORDM_ICON = svg_icon(_ICON_SVG)


@dataclass(frozen=True)
class InvenioRDMSettings:
    """What the InvenioRDM backend reads from the configuration, checked when it is built."""

    address: str = setting("INVENIORDM_ADDRESS", "url", required=True)
    client_id: str | None = setting("INVENIORDM_OAUTH_CLIENT_ID")
    client_secret: str | None = setting("INVENIORDM_OAUTH_CLIENT_SECRET", secret=True)
    redirect_uri: str | None = setting("RDS_OAUTH_REDIRECT_URI")
    community: str | None = setting("INVENIORDM_COMMUNITY")
    display_name: str | None = setting("INVENIORDM_DISPLAYNAME")
    info_url: str | None = setting("INVENIORDM_INFO_URL")
    help_url: str | None = setting("INVENIORDM_HELP_URL")
    icon: str | None = setting("INVENIORDM_ICON")
    project_link_template: str | None = setting("INVENIORDM_PROJECT_LINK_TEMPLATE")

    def __post_init__(self) -> None:
        oauth = (self.client_id, self.client_secret)
        if any(oauth) and not all(oauth):
            missing = "ID" if self.client_id is None else "SECRET"
            raise ConfigError(
                f"INVENIORDM_OAUTH_CLIENT_{missing} is required when the other OAuth "
                "setting is set (set both for OAuth2, neither for personal access tokens)"
            )
        if all(oauth) and not self.redirect_uri:
            raise ConfigError("RDS_OAUTH_REDIRECT_URI is required when InvenioRDM uses OAuth2")


def _entry(f: Json) -> Json:
    key = str(f.get("key", ""))
    return {
        "id": key,
        "filename": key,
        "size": int(f.get("size") or 0),
        "checksum": f.get("checksum") or "",
    }


def _doi(record: Json) -> str | None:
    doi = ((record.get("pids") or {}).get("doi") or {}).get("identifier")
    return str(doi) if doi else None


class InvenioRDMArchive(RepositoryArchive[InvenioRDMClient]):
    """Metadata interface on InvenioRDM's records API; one instance serves every user."""

    needs_token = True
    client_class = InvenioRDMClient

    @property
    def max_files(self) -> int:
        return MAX_FILES  # read when asked, so tests can lower MAX_FILES

    def __init__(
        self,
        address: str,
        *,
        oauth: tuple[str, str, str] | None = None,
        community: str | None = None,
        info: Json | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        login_attempts: int = 5,
    ) -> None:
        self._transport(
            address,
            info,
            session or outside.session("inveniordm"),
            sleep=sleep,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            login_attempts=login_attempts,
        )
        self._oauth = oauth  # (client id, client secret, redirect URI) or None: tokens
        self.community = community
        self._created: dict[tuple[str, str], str] = {}  # (token hash, Idempotency-Key) -> id

    def __repr__(self) -> str:
        return f"InvenioRDMArchive({self.address!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> InvenioRDMArchive:
        """Build from ``INVENIORDM_*``; ConfigError names a missing or bad value."""
        own = load_declared(InvenioRDMSettings, settings)
        session = outside.session("inveniordm", verify=settings.verify_ssl)
        oauth = None
        if own.client_id and own.client_secret and own.redirect_uri:
            oauth = (own.client_id, own.client_secret, own.redirect_uri)
        return cls(
            own.address,
            oauth=oauth,
            community=own.community,
            info=display_info(own),
            session=session,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )

    # -- init --------------------------------------------------------------------------
    def login(self) -> None:
        """The instance's records API answers a public search (bounded retries)."""
        status = self._answering(lambda s: s < 500, f"InvenioRDM at {self.address} is down")
        if status != 200:
            raise LoginFailed(f"{self.address} has no InvenioRDM records API ({status})")
        log.info("inveniordm.login ok address=%s", self.address)

    def registration_fields(self) -> Json:
        """OAuth2 with client id/secret; else a login service whose users enter a token."""
        if self._oauth is None:
            return {"credentials": {"userId": False, "password": True}}
        client_id, secret, redirect = self._oauth
        return {
            "authorize_url": (
                f"{self.address}/oauth/authorize?response_type=code"
                f"&redirect_uri={quote(redirect, safe='')}&client_id={quote(client_id, safe='')}"
            ),
            "refresh_url": f"{self.address}/oauth/token",
            "client_id": client_id,
            "client_secret": secret,
        }

    def service_info(self) -> Json:
        return service_info(
            self.info.get("displayName") or "InvenioRDM",
            "Publish research data in an InvenioRDM repository with a DOI.",
            "Forschungsdaten in einem InvenioRDM-Repositorium mit DOI veroeffentlichen.",
            self.info.get("icon") or INVENIORDM_ICON,
            infoUrl=self.info.get("infoUrl") or self.address,
            helpUrl=self.info.get("helpUrl") or "https://inveniordm.docs.cern.ch",
            projectLinkTemplate=self.info.get("projectLinkTemplate")
            or f"{self.address}/uploads/${{projectId}}",
        )

    # -- helpers -----------------------------------------------------------------------
    @staticmethod
    def _check_id(project_id: str) -> str:
        if not project_id or len(project_id) > 100 or not project_id.replace("-", "").isalnum():
            raise NotFound(f"no project {project_id!r} on InvenioRDM", field="projectId")
        return project_id

    def _state(self, ic: InvenioRDMClient, project_id: str) -> Json:
        """The user's draft of the project, else its published record; 404 if neither."""
        rid = self._check_id(project_id)
        try:
            return ic.read_draft(rid)
        except NotFound:
            pass
        try:
            return ic.read_record(rid)
        except NotFound as exc:
            raise NotFound(f"no project {project_id!r} on InvenioRDM", field="projectId") from exc

    def _draft(self, ic: InvenioRDMClient, project_id: str) -> Json:
        record = self._state(ic, project_id)
        if record.get("is_published"):
            raise Conflict(
                "the project is published on InvenioRDM and can no longer change",
                field="projectId",
            )
        return record

    def _named(self, exc: InvenioValidationError, sent: Json | None) -> BadRequest:
        """InvenioRDM's refusal, named by the RO-Crate property at fault."""
        pairs = list(exc.errors)
        if not pairs and exc.message.startswith("Invalid value "):
            value = exc.message[len("Invalid value ") :].rstrip(".")
            pairs = [(field_of_value(sent or {}, value) or "metadata", exc.message)]
        named = [(crate_property_for(f, metadata=sent), m) for f, m in pairs]
        if not named:
            return BadRequest(exc.detail, field="metadata")
        return BadRequest(
            "InvenioRDM refused the metadata: " + "; ".join(f"{p}: {m}" for p, m in named),
            field=named[0][0],
            extra={"errors": [{"field": p, "message": f"{p}: {m}"} for p, m in named]},
        )

    def _mapped(self, ic: InvenioRDMClient, crate: Json) -> Json:
        """The crate as InvenioRDM metadata, its licence ids checked against the instance."""
        metadata = crate_to_inveniordm(crate)
        for right in metadata.get("rights", []):
            if "id" in right and not ic.has_term("licenses", right["id"]):
                raise BadRequest(
                    f"license {right['id']!r} is not in the licence vocabulary of "
                    f"{self.address}; choose one the instance offers",
                    field="license",
                )
        return metadata

    def _save(self, ic: InvenioRDMClient, rid: str | None, body: Json) -> Json:
        """Create or update a draft; values InvenioRDM drops are a 400 (the draft keeps the
        valid rest), missing ones are fine until publish."""
        try:
            saved = ic.create_draft(body) if rid is None else ic.update_draft(rid, body)
        except InvenioValidationError as exc:
            raise self._named(exc, body.get("metadata")) from exc
        dropped = [
            (str(e.get("field")), m)
            for e in saved.get("errors") or []
            if isinstance(e, dict) and str(e.get("field", "")).startswith("metadata")
            for m in (e.get("messages") or [])
            if m != MISSING
        ]
        if dropped:
            if rid is None:  # nothing half-made: the new draft goes again
                ic.delete_draft(str(saved.get("id")))
            raise self._named(InvenioValidationError("", dropped, ""), body.get("metadata"))
        return saved

    def _files(self, ic: InvenioRDMClient, record: Json) -> list[Json]:
        """The completed files (a pending one is still in flight: hidden), sorted."""
        draft = not record.get("is_published")
        entries = ic.list_entries(str(record["id"]), draft=draft)
        done = [_entry(e) for e in entries if e.get("status", "completed") == "completed"]
        return sorted(done, key=lambda e: e["id"])

    def _crate(self, record: Json, files: list[Json] | None = None) -> Json:
        return inveniordm_to_crate(record, files=files)

    # -- projects ----------------------------------------------------------------------
    def list_projects(self, who: Identity) -> list[Json]:
        """Every draft and record of the user (all pages); files are listed per project."""
        records = self.client(who).list_user_records()
        return [{"projectId": str(r["id"]), "metadata": self._crate(r)} for r in records]

    def create_project(
        self, who: Identity, metadata: Json | None, *, idempotency_key: str | None = None
    ) -> Json:
        """A new draft; a caller's retried create with the same ``Idempotency-Key`` gets the
        draft the first one made (remembered by this process: InvenioRDM has no field to tag
        a draft with that a user would not see)."""
        ic = self.client(who)
        remembered = self._created.get((token_key(SERVICE_KEY, who.token), idempotency_key or ""))
        if idempotency_key and remembered:
            try:
                return self.get_project_entry(ic, remembered)
            except NotFound:
                pass  # deleted since: make a new one
        body: Json = {
            "access": {"record": "public", "files": "public"},
            "files": {"enabled": True},
            "metadata": self._mapped(ic, metadata) if metadata is not None else {},
        }
        record = self._save(ic, None, body)
        log.info("inveniordm.project.created id=%s", record.get("id"))
        if idempotency_key:
            self._created[(token_key(SERVICE_KEY, who.token), idempotency_key)] = str(record["id"])
        return {"projectId": str(record["id"]), "metadata": self._crate(record)}

    def get_project_entry(self, ic: InvenioRDMClient, project_id: str) -> Json:
        record = self._state(ic, project_id)
        return {"projectId": str(record["id"]), "metadata": self._crate(record)}

    def get_project(self, who: Identity, project_id: str) -> Json:
        ic = self.client(who)
        record = self._state(ic, project_id)
        return self._crate(record, self._files(ic, record))

    def update_project(self, who: Identity, project_id: str, metadata: Json | None) -> Json:
        ic = self.client(who)
        if metadata is None:
            return self.get_project(who, project_id)
        current = self._draft(ic, project_id)
        body: Json = {
            "access": {k: current.get("access", {}).get(k, "public") for k in ("record", "files")},
            "files": {"enabled": True},
            "metadata": self._mapped(ic, metadata),
        }
        for kept in ("pids", "custom_fields"):
            if current.get(kept):
                body[kept] = current[kept]
        record = self._save(ic, str(current["id"]), body)
        return self._crate(record, self._files(ic, record))

    def publish_project(self, who: Identity, project_id: str) -> str | Json:
        """Publish and answer the DOI; with ``INVENIORDM_COMMUNITY`` submit the draft to the
        community's review instead and answer ``{"DOI": <DOI or None>, "submitted": true,
        "community", "status", "request"}`` (the DOI only once the community accepted)."""
        ic = self.client(who)
        record = self._state(ic, project_id)
        if not record.get("is_published"):
            try:
                if self.community:
                    return self._submit(ic, str(record["id"]))
                record = ic.publish(str(record["id"]))
            except InvenioValidationError as exc:
                raise self._named(exc, record.get("metadata")) from exc
        doi = _doi(record)
        if not doi:
            raise UpstreamError("InvenioRDM published the record but answered no DOI")
        log.info("inveniordm.project.published id=%s doi=%s", project_id, doi)
        return doi

    def _submit(self, ic: InvenioRDMClient, rid: str) -> Json:
        review = ic.read_review(rid)
        if review is None or review.get("status") in ("declined", "cancelled", "expired"):
            review = ic.put_review(rid, self.community or "")
        if review.get("status") == "created":
            review = ic.submit_review(rid)
        status = str(review.get("status"))
        doi = _doi(ic.read_record(rid)) if status == "accepted" else None
        log.info("inveniordm.project.submitted id=%s status=%s", rid, status)
        return {
            "DOI": doi,
            "submitted": True,
            "community": self.community,
            "status": status,
            "request": review.get("id"),
        }

    def delete_project(self, who: Identity, project_id: str) -> None:
        ic = self.client(who)
        ic.delete_draft(str(self._draft(ic, project_id)["id"]))

    # -- files -------------------------------------------------------------------------
    def list_files(self, who: Identity, project_id: str) -> list[Json]:
        ic = self.client(who)
        return self._files(ic, self._state(ic, project_id))

    def get_file(self, who: Identity, project_id: str, file_id: str) -> Json:
        for entry in self.list_files(who, project_id):
            if entry["id"] == file_id:
                return entry
        raise NotFound(f"no file {file_id!r} in this project", field="fileId")

    def _present(self, ic: InvenioRDMClient, rid: str) -> dict[str, Json]:
        return {str(e.get("key")): e for e in ic.list_entries(rid)}

    def store_file(self, who: Identity, project_id: str, upload: Upload) -> Json:
        """Init, stream, commit and verify one file; a failure leaves no key behind."""
        path = archive_name(upload.filename, "filename")
        if len(path) > MAX_KEY_CHARS:
            raise BadRequest(
                f"{path!r} is longer than InvenioRDM's {MAX_KEY_CHARS} characters",
                field="filename",
            )
        ic = self.client(who)
        rid = str(self._draft(ic, project_id)["id"])
        present = self._present(ic, rid)
        # the same body as Zenodo's: exact size, a checked hint, or a bounded disk spool
        body = sized_body(upload, window=0, spool_limit=SPOOL_LIMIT, path=path)
        try:
            _check_limits(path, body.size, present)
            if path not in present:
                return self._upload(ic, rid, path, body)
            ic.delete_file(rid, path)  # InvenioRDM refuses to init a key twice: delete first
            try:
                return self._upload(ic, rid, path, body)
            except ConnectorError as exc:
                exc.detail += f"; the earlier copy of {path!r} was removed to make room for it"
                raise
        finally:
            body.close()

    def _upload(self, ic: InvenioRDMClient, rid: str, key: str, body: Body) -> Json:
        ic.init_file(rid, key)
        try:
            ic.put_content(rid, key, body, body.size)
            answer = ic.commit(rid, key)
        except BaseException:
            _discard(ic, rid, key)
            raise
        remote = str(answer.get("checksum") or "")
        if remote != f"md5:{body.md5}" or int(answer.get("size", -1)) != body.size:
            _discard(ic, rid, key)
            raise UpstreamError(
                f"{key!r} arrived damaged at InvenioRDM (checksum {remote or 'missing'}, "
                f"sent md5:{body.md5}); the remote copy was deleted",
                field="file",
                extra={"notStored": [key]},
            )
        log.info("inveniordm.upload.done id=%s size=%d md5=%s", rid, body.size, body.md5)
        return {"id": key, "filename": key, "size": body.size, "checksum": remote}

    def check_batch(
        self, who: Identity, project_id: str, entries: list[tuple[str, int | None]]
    ) -> None:
        """Refuse up front a batch the record cannot hold (file count, known bytes)."""
        ic = self.client(who)
        present = self._present(ic, str(self._draft(ic, project_id)["id"]))
        batch = {archive_name(name, "filename"): size or 0 for name, size in entries}
        count = len(set(present) | set(batch))
        total = sum(batch.values()) + sum(
            int(e.get("size") or 0) for k, e in present.items() if k not in batch
        )
        names = sorted(batch)
        if count > MAX_FILES:
            raise Conflict(
                f"the transfer would give the record {count} files; InvenioRDM allows "
                f"{MAX_FILES}, so nothing was transferred (zip folders to send more)",
                field="folder",
                extra={"notStored": names},
            )
        if total > MAX_RECORD_BYTES:
            raise PayloadTooLarge(
                f"the transfer would take the record to {total} bytes, past InvenioRDM's "
                "default quota of 10 GB; nothing was transferred",
                field="folder",
                extra={"notStored": names},
            )

    def update_file(self, who: Identity, project_id: str, file_id: str, changes: Json) -> Json:
        """Rename: InvenioRDM has no rename, so the content is streamed to the new key,
        verified against the old checksum, and only then the old key deleted."""
        ic = self.client(who)
        rid = str(self._draft(ic, project_id)["id"])
        current = {e["id"]: e for e in (_entry(x) for x in ic.list_entries(rid))}
        if file_id not in current:
            raise NotFound(f"no file {file_id!r} in this project", field="fileId")
        new = changes.get("filename") or changes.get("newfilename")
        if new is None or new == file_id:
            return current[file_id]
        new = archive_name(new, "filename")
        if new in current:
            raise Conflict(f"a file named {new!r} exists already", field="filename")
        old = current[file_id]
        with ic.open_content(rid, file_id) as resp:
            source = Upload(new, resp.iter_content(CHUNK_SIZE), size=int(old["size"]))
            body = sized_body(source, window=0, spool_limit=SPOOL_LIMIT, path=new)
            try:
                copied = self._upload(ic, rid, new, body)
            finally:
                body.close()
        if copied["checksum"] != old["checksum"]:
            _discard(ic, rid, new)
            raise UpstreamError(f"the copy of {file_id!r} differs; nothing was renamed")
        ic.delete_file(rid, file_id)
        return copied

    def delete_file(self, who: Identity, project_id: str, file_id: str) -> None:
        ic = self.client(who)
        rid = str(self._draft(ic, project_id)["id"])
        try:
            ic.delete_file(rid, archive_name(file_id, "fileId"))
        except NotFound as exc:
            raise NotFound(f"no file {file_id!r} in this project", field="fileId") from exc

    def delete_files(self, who: Identity, project_id: str) -> None:
        """Delete every file (pending ones too); a failure names those still there."""
        ic = self.client(who)
        rid = str(self._draft(ic, project_id)["id"])
        keys = sorted(self._present(ic, rid))
        for done, key in enumerate(keys):
            try:
                ic.delete_file(rid, key)
            except NotFound:
                continue
            except ConnectorError as exc:
                exc.extra["notDeleted"] = keys[done:]
                raise


def _check_limits(path: str, size: int, present: dict[str, Any]) -> None:
    """InvenioRDM's default per-record limits, refused before a byte is sent."""
    others = {k: e for k, e in present.items() if k != path}
    if len(others) + 1 > MAX_FILES:
        raise Conflict(
            f"the record holds {len(others)} files and InvenioRDM allows {MAX_FILES}: "
            f"{path!r} was not uploaded (zip folders to send more)",
            field="file",
            extra={"notStored": [path]},
        )
    if sum(int(e.get("size") or 0) for e in others.values()) + size > MAX_RECORD_BYTES:
        raise PayloadTooLarge(
            f"{path!r} would take the record past InvenioRDM's 10 GB quota; it was not uploaded",
            field="file",
            extra={"notStored": [path]},
        )


def _discard(ic: InvenioRDMClient, rid: str, key: str) -> None:
    try:
        ic.delete_file(rid, key)
    except NotFound:
        return  # nothing was left
    except ConnectorError:  # the error being raised says what happened; a leftover is logged
        log.error("inveniordm.upload.discard_failed key_chars=%d", len(key))
