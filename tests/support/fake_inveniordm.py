"""A faithful fake of InvenioRDM's REST API (records, drafts, draft files, reviews), for loopback tests.

It enforces what a real InvenioRDM instance enforces where a connector can tell. Each rule
names where it was checked: the REST reference of docs-invenio-rdm
(https://inveniordm.docs.cern.ch/reference/rest_api_drafts_records/, ``.../rest_api_reviews/``,
``.../rest_api_requests/``, ``.../rest_api_vocabularies/``, ``.../rest_api_index/``; source
github.com/inveniosoftware/docs-invenio-rdm ``docs/reference/``) and, where the docs are
silent, the code of github.com/inveniosoftware/invenio-rdm-records (RDM),
invenio-drafts-resources (DR), invenio-records-resources (RR), flask-resources (FR),
invenio-oauth2server and invenio-files-rest (FR-files).

Authentication and permissions
  * ``Authorization: Bearer <token>`` (or ``?access_token=``, rest_api_index) maps to a user
    (``add_token(token, user=...)``). An unknown token is not an error by itself: the
    oauth2server only logs a valid token in (``login_oauth2_user``), so the request runs as
    a guest. Draft operations by a guest or by another user answer **403** "Permission
    denied." (RR ``resources/errors.py`` maps ``PermissionDeniedError`` to 403; RDM
    ``tests/resources/test_draft_file_permissions.py`` asserts 403 for anonymous *and* other
    users). The records API never answers 401; published public records are readable by
    anyone. Resolution comes before permission: an unknown id is 404 for everybody, and on
    file routes an unknown key is 404 before the owner check (RR ``FileService._get_record``).
  * JSON bodies (create, update, file init, review, submit-review) go through flask-resources'
    body parser: a ``Content-Type`` other than exactly ``application/json`` is **415**, a
    missing one defaults to JSON (FR ``parsers/decorators.py::request_body_parser``);
    undecodable JSON is 400. File content accepts ``application/octet-stream`` (or none).
  * Errors are ``{"status", "message"}`` plus ``errors: [{"field", "messages": [...]}]`` for
    validation (RR ``errors.py::validation_error_to_list_errors``, FR ``HTTPJSONException``).

Drafts and records (rest_api_drafts_records; DR ``services/records/service.py``)
  * ``POST /api/records`` 201 and ``PUT .../draft`` 200 save partial drafts: the schema loads
    with ``raise_errors=False``, so the answer carries ``errors`` (missing required fields
    included) and only the valid fields are stored. Unknown vocabulary ids (resource type,
    licence, language, roles, relation types) are refused at save time with 400 "Invalid
    value <id>." and nothing is stored (relations are checked on every commit of the draft:
    RDM ``tests/records/test_relations_*.py``; RDM ``resources/config.py`` error handler).
  * Required on publish (RDM ``services/schemas/metadata.py``): ``resource_type`` (vocabulary
    id), ``title`` (at least 3 characters), ``publication_date`` (EDTF level 0 date or
    interval, chronological), ``creators`` (non-empty; ``person_or_org.type`` personal with
    ``family_name``, or organizational with ``name``); contributors need a ``role``.
    ``POST .../draft/actions/publish`` is **202**; a failing draft is 400 "A validation error
    occurred." with ``errors``. Metadata is validated first; then files (DR
    ``components/base.py``): files enabled and none -> ``files.enabled`` "Missing uploaded
    files. ..."; a pending file -> ``files`` "One or more files have not completed their
    transfer, please wait.". Metadata-only records (``files.enabled: false``) may publish
    (RDM ``RDM_ALLOW_METADATA_ONLY_RECORDS = True``). An open review blocks publishing (RDM
    ``components/review.py``).
  * Published records get ``is_published``, ``pids.doi`` (``10.5072/inveniordm.<id>``,
    provider datacite) unless an external DOI was given. ``POST .../draft`` edits a
    published record (its files locked: 403 "Bucket is locked for modifications.",
    FR-files ``BucketLockedError``); ``DELETE .../draft`` 204 discards that edit, or removes
    a never-published draft with its files.
  * ``GET /api/user/records`` and ``GET /api/records?q=``: ``hits.hits``, ``hits.total`` (an
    int), ``sortBy``, ``page``, ``links.self/prev/next``; ``size`` defaults to 25 (RR
    ``pagination_options``; the docs say 10), ``next`` only while ``page*size < total``, a
    page outside 1..10000 results is 400 (RR ``pagination.py``, ``records/results.py``).
    ``q`` is a case-insensitive substring of the title here, not a search-engine query.

Draft files (rest_api_drafts_records; RR ``resources/files/config.py``, ``services/files``)
  * ``POST .../draft/files`` ``[{"key"}]`` -> 201, entries ``pending``; an existing key is
    400; more than ``max_files`` (100, RR ``FileServiceConfig.max_files_count``) is 400.
  * Keys are routed with ``<path:key>`` since invenio-records-resources v4.16.3 (commit
    73acd56, "files: allowing slash in url"), so ``a/b.csv`` works raw or as ``a%2Fb.csv``
    (the WSGI server decodes ``%2F`` before routing). Keys over 255 characters are 400
    (FR-files ``FILES_REST_OBJECT_KEY_MAX_LEN``, ``InvalidKeyError``).
  * ``PUT .../content`` 200 streams to disk in 1 MiB chunks; a declared size above
    ``max_file_size`` or the record's ``quota_size`` is 400 before a byte is read. A body
    cut short deletes the entry (400, RR ``FileContentComponent``); content sent to a
    *committed* key also fails and deletes the entry (``LocalTransfer`` raises, the
    component removes the file). Deviation: InvenioRDM does not itself require
    ``Content-Length``, but behind werkzeug a body of unknown length reads as empty
    (``werkzeug.wsgi.get_input_stream``) and would be stored as a 0-byte file; the fake
    refuses a chunked body with 400 so that mistake shows.
  * ``POST .../commit`` 200 -> ``completed``, ``checksum: md5:<hex>``, ``size``. Committing a
    key whose content never arrived is a **500** in InvenioRDM (``FilesManager.commit``
    raises a bare ``Exception``); the fake answers the same. Empty files are accepted
    (``RECORDS_RESOURCES_ALLOW_EMPTY_FILES`` defaults to True; set ``allow_empty_files`` to
    False for 400 "Empty files are not accepted." on commit).
  * ``DELETE .../draft/files/{key}`` 204.

Reviews (rest_api_reviews; RDM ``services/review/service.py``)
  * ``PUT .../draft/review`` ``{"receiver": {"community": id-or-slug}, "type":
    "community-submission"}`` 200 (status ``created``); unknown community 404; published
    record 400. ``POST .../draft/actions/submit-review`` validates the draft like publish and
    answers 202 (status ``submitted``); ``accept_review()`` (or a curator's
    ``POST /api/requests/{id}/actions/accept``) publishes it into the community;
    ``decline_review()`` closes it. A community's ``curators`` are included directly.

Rate limits (docs ``operate/ops/migrate.md``: Flask-Limiter, "5000 per hour;100 per minute")
  Every answer carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
  ``X-RateLimit-Reset`` (epoch seconds) from a fixed window per user (guests per address);
  above ``rate_limit`` the answer is 429 with ``Retry-After`` (seconds), sent before the body
  is read, and the request has no effect. The default limit is high enough for ordinary
  tests.

Test controls: ``add_token``, ``add_community``, ``inject`` (faults as in fake_zenodo),
``accept_review``/``decline_review``, the ``requests`` log (each entry records
``bytes_read``), ``file_bytes`` and ``close``.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import mimetypes
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask, Response, request, send_file

from tests.support import fake_common as common
from tests.support.fake_common import MAX_FILES, Fault, host_url, resolved
from tests.support.fake_common import error as _err
from tests.support.fake_common import json_response as _json

KEY_MAX_LEN = 255
DEFAULT_PAGE_SIZE = 25
MAX_RESULTS = 10_000
MISSING = "Missing data for required field."
PERSON_TYPES = ("organizational", "personal")
NOT_FOUND = "The persistent identifier does not exist."
DENIED = "Permission denied."
REVIEW_TYPE = "community-submission"

RESOURCE_TYPES = {
    "dataset": "Dataset",
    "image": "Image",
    "image-photo": "Photo",
    "image-figure": "Figure",
    "lesson": "Lesson",
    "other": "Other",
    "physicalobject": "Physical object",
    "poster": "Poster",
    "presentation": "Presentation",
    "publication": "Publication",
    "publication-article": "Journal article",
    "publication-book": "Book",
    "publication-preprint": "Preprint",
    "publication-report": "Report",
    "publication-thesis": "Thesis",
    "software": "Software",
    "video": "Video/Audio",
    "workflow": "Workflow",
}
LICENSES = {
    "cc-by-4.0": "Creative Commons Attribution 4.0 International",
    "cc-by-sa-4.0": "Creative Commons Attribution Share Alike 4.0 International",
    "cc-by-nc-4.0": "Creative Commons Attribution Non Commercial 4.0 International",
    "cc-by-nd-4.0": "Creative Commons Attribution No Derivatives 4.0 International",
    "cc0-1.0": "Creative Commons Zero v1.0 Universal",
    "mit": "MIT License",
    "apache-2.0": "Apache License 2.0",
    "bsd-3-clause": 'BSD 3-Clause "New" or "Revised" License',
    "gpl-3.0-or-later": "GNU General Public License v3.0 or later",
}
LANGUAGES = {
    "eng": "English",
    "deu": "German",
    "fra": "French",
    "spa": "Spanish",
    "ita": "Italian",
    "nld": "Dutch",
}
ROLES = {
    "contactperson",
    "datacollector",
    "datacurator",
    "datamanager",
    "distributor",
    "editor",
    "hostinginstitution",
    "other",
    "producer",
    "projectleader",
    "projectmanager",
    "projectmember",
    "researcher",
    "researchgroup",
    "rightsholder",
    "sponsor",
    "supervisor",
    "workpackageleader",
}
RELATION_TYPES = {
    "cites",
    "compiles",
    "continues",
    "describes",
    "documents",
    "haspart",
    "hasversion",
    "iscitedby",
    "iscompiledby",
    "iscontinuedby",
    "isderivedfrom",
    "isdescribedby",
    "isdocumentedby",
    "isidenticalto",
    "isnewversionof",
    "ispartof",
    "ispreviousversionof",
    "isreferencedby",
    "isrequiredby",
    "issourceof",
    "issupplementedby",
    "issupplementto",
    "isversionof",
    "obsoletes",
    "references",
    "requires",
}
VOCABULARIES = {"resourcetypes": RESOURCE_TYPES, "licenses": LICENSES, "languages": LANGUAGES}
# endpoints whose body goes through flask-resources' JSON body parser
JSON_ENDPOINTS = {"create", "update_draft", "init_files", "put_review", "submit_review"}
# the Content-Type each body-parsing endpoint accepts (a missing one passes)
BODY_TYPES = {
    **dict.fromkeys(JSON_ENDPOINTS, "application/json"),
    "put_content": "application/octet-stream",
}
SCHEMA_ERROR = [("_schema", "Invalid input type.")]
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


@dataclass
class FileEntry:
    key: str
    created: str
    updated: str
    status: str = "pending"
    path: Path | None = None
    size: int = 0
    md5: str = ""
    shared: bool = False  # content belongs to the published record (edit drafts)
    file_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Draft:
    data: dict[str, Any]
    updated: str
    files: dict[str, FileEntry] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    locked: bool = False  # the edit draft of a published record: its files are locked


@dataclass
class Review:
    id: str
    number: int
    community: str
    created: str
    updated: str
    status: str = "created"

    @property
    def is_open(self) -> bool:
        return self.status == "submitted"

    @property
    def is_closed(self) -> bool:
        return self.status in ("accepted", "declined", "cancelled", "expired")


@dataclass
class Community:
    id: str
    slug: str
    title: str
    curators: set[str]


@dataclass
class Entry:
    id: str
    owner: str
    parent_id: str
    bucket_id: str
    created: str
    draft: Draft | None
    record: dict[str, Any] | None = None
    record_files: dict[str, FileEntry] = field(default_factory=dict)
    published_at: str | None = None
    doi: str | None = None
    review: Review | None = None
    communities: list[str] = field(default_factory=list)
    revision: int = 1


class FakeInvenioRDM(common.FaultInjection):
    """The fake's state plus its Flask app (``self.app``); thread-safe for a threaded server."""

    def __init__(self, root: Path | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="fake-inveniordm-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.users: dict[str, str] = {}
        self.entries: dict[str, Entry] = {}
        self.communities: dict[str, Community] = {}
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.max_files = MAX_FILES
        self.max_file_size = 10 * 1000**3
        self.quota_size = 10 * 1000**3
        self.allow_empty_files = True
        self.doi_prefix = "10.5072"
        self.rate_limit = 10_000
        self.rate_window = 60.0
        self._windows: dict[str, tuple[float, int]] = {}
        self._ids = itertools.count(1)
        self._numbers = itertools.count(1)
        self.lock = threading.RLock()
        self.app = self._build()

    # -- test controls -----------------------------------------------------------------
    def add_token(self, token: str, *, user: str | None = None) -> None:
        """Accept ``token`` as ``user`` (default: a user of its own)."""
        self.users[token] = user or token

    def add_community(
        self, slug: str, *, title: str | None = None, curators: Iterable[str] = ()
    ) -> str:
        """Create a community; returns its id (a UUID). Curators' submissions are included."""
        community = Community(str(uuid.uuid4()), slug, title or slug, set(curators))
        with self.lock:
            self.communities[community.id] = community
        return community.id

    def accept_review(self, record_id: str) -> dict[str, Any]:
        """Accept the submitted review of ``record_id`` as its community would (publishes)."""
        entry = self.entries[record_id]
        if entry.review is None or not entry.review.is_open:
            raise ValueError(f"record {record_id} has no submitted review")
        problems = self._publish_problems(entry)
        if problems:
            raise ValueError(f"the draft of {record_id} cannot be published: {problems}")
        with self.lock:
            self._close_review(entry, "accepted")
            self._publish(entry)
        return {"status": entry.review.status, "record": record_id}

    def decline_review(self, record_id: str) -> None:
        """Decline the submitted review of ``record_id``; the draft stays a draft."""
        entry = self.entries[record_id]
        if entry.review is None or not entry.review.is_open:
            raise ValueError(f"record {record_id} has no submitted review")
        with self.lock:
            self._close_review(entry, "declined")

    def file_bytes(self, record_id: str, key: str) -> bytes:
        """The stored content of ``key`` (the published file, else the draft's)."""
        entry = self.entries[record_id]
        found = entry.record_files.get(key)
        if found is None and entry.draft is not None:
            found = entry.draft.files.get(key)
        if found is None or found.path is None:
            raise KeyError(key)
        return found.path.read_bytes()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------
    def _now(self) -> str:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC).isoformat()

    def _new_id(self) -> str:
        n = (next(self._ids) * 2_654_435_761 + 97_531) % 32**10
        chars = "".join(_ALPHABET[(n >> (5 * i)) & 31] for i in range(10))
        return f"{chars[:5]}-{chars[5:]}"

    @staticmethod
    def _user() -> str | None:
        return request.environ.get("fake.user")

    def _community(self, ref: Any) -> Community | None:
        if not isinstance(ref, str):
            return None
        found = self.communities.get(ref)
        return found or next((c for c in self.communities.values() if c.slug == ref), None)

    def _entry(self, rid: str) -> Entry | Response:
        entry = self.entries.get(rid)
        return _err(404, NOT_FOUND) if entry is None else entry

    # resolvers: what a route acts on, or its refusal (for ``resolved``); resolution comes
    # before permission, as in InvenioRDM
    def _draft(self, rid: str) -> tuple[Entry, Draft] | Response:
        entry = self._entry(rid)
        if isinstance(entry, Response):
            return entry
        return _err(404, "Not found.") if entry.draft is None else (entry, entry.draft)

    def _stranger(self, entry: Entry) -> bool:
        return self._user() is None or self._user() != entry.owner

    def _own_draft(self, rid: str) -> tuple[Entry, Draft] | Response:
        found = self._draft(rid)
        if isinstance(found, Response):
            return found
        return _err(403, DENIED) if self._stranger(found[0]) else found

    @staticmethod
    def _body_then(
        resolve: Callable[[str], tuple[Any, ...] | Response], kind: type = object
    ) -> Callable[[str], tuple[Any, ...] | Response]:
        """Resolve a JSON route in flask-resources' order: undecodable 400, ``resolve``'s
        404/403, then a body not of ``kind`` 400; the body comes last in what it finds."""

        def resolve_with_body(rid: str) -> tuple[Any, ...] | Response:
            body = _json_body()
            if isinstance(body, Response):
                return body
            found = resolve(rid)
            if isinstance(found, Response):
                return found
            body = _of_type(body, kind)
            return body if isinstance(body, Response) else (*found, body)

        return resolve_with_body

    def _own_file(self, rid: str, key: str) -> tuple[Entry, Draft, FileEntry] | Response:
        found = self._draft(rid)
        if isinstance(found, Response):
            return found
        entry, draft = found
        f = draft.files.get(key)
        if f is None:  # resolution of the key comes before the permission check
            return _err(404, f"File with key {key} not found.")
        return _err(403, DENIED) if self._stranger(entry) else (entry, draft, f)

    def _published_entry(self, rid: str) -> Entry | Response:
        entry = self._entry(rid)
        if isinstance(entry, Response) or entry.record is not None:
            return entry
        return _err(404, "The persistent identifier is not registered.")

    def _readable_record(self, rid: str, part: str = "record") -> Entry | Response:
        entry = self._published_entry(rid)
        if isinstance(entry, Response):
            return entry
        assert entry.record is not None
        restricted = entry.record.get("access", {}).get(part) == "restricted"
        return _err(403, DENIED) if restricted and self._user() != entry.owner else entry

    def _readable_files(self, rid: str) -> Entry | Response:
        return self._readable_record(rid, "files")

    def _readable_file(self, rid: str, key: str) -> tuple[Entry, FileEntry] | Response:
        entry = self._readable_files(rid)
        if isinstance(entry, Response):
            return entry
        f = entry.record_files.get(key)
        return _err(404, f"File with key {key} not found.") if f is None else (entry, f)

    # -- JSON shapes -------------------------------------------------------------------
    def _status(self, entry: Entry, draft: bool) -> str:
        if not draft or entry.record is not None:
            return "published"
        review = entry.review
        if review is None or review.status == "cancelled":
            return "draft"
        return {"created": "draft_with_review", "submitted": "in_review"}.get(
            review.status, review.status
        )

    def _record_json(self, entry: Entry, *, draft: bool) -> dict[str, Any]:
        base = f"{host_url()}/api/records/{entry.id}"
        data = entry.draft.data if draft and entry.draft else entry.record or {}
        files = entry.draft.files if draft and entry.draft else entry.record_files
        links = {
            "self": f"{base}/draft" if draft else base,
            "self_html": f"{host_url()}/{'uploads' if draft else 'records'}/{entry.id}",
            "files": f"{base}/draft/files" if draft else f"{base}/files",
            "versions": f"{base}/versions",
            "latest": f"{base}/versions/latest",
            "latest_html": f"{host_url()}/records/{entry.id}/latest",
            "access_links": f"{base}/access/links",
        }
        if draft:
            links |= {
                "publish": f"{base}/draft/actions/publish",
                "review": f"{base}/draft/review",
                "submit-review": f"{base}/draft/actions/submit-review",
                "reserve_doi": f"{base}/draft/pids/doi",
            }
        if entry.record is not None:
            links["record"] = base
        if entry.draft is not None:
            links["draft"] = f"{base}/draft"
        pids = copy.deepcopy(data.get("pids") or {})
        if entry.doi:
            pids["doi"] = {"identifier": entry.doi, "provider": "datacite", "client": "datacite"}
            pids["oai"] = {"identifier": f"oai:fake-inveniordm:{entry.id}", "provider": "oai"}
            links["doi"] = f"https://doi.org/{entry.doi}"
        metadata = copy.deepcopy(data.get("metadata") or {})
        _decorate(metadata)
        out: dict[str, Any] = {
            "id": entry.id,
            "created": entry.created,
            "updated": entry.draft.updated if draft and entry.draft else entry.published_at,
            "revision_id": entry.revision,
            "is_published": entry.record is not None,
            "is_draft": draft,
            "status": self._status(entry, draft),
            "access": {
                "record": data.get("access", {}).get("record", "public"),
                "files": data.get("access", {}).get("files", "public"),
                "embargo": {"active": False, "reason": None},
            },
            "files": {
                "enabled": data.get("files_enabled", True),
                "order": [],
                "count": len(files),
                "total_bytes": sum(f.size for f in list(files.values())),
            },
            "metadata": metadata,
            "custom_fields": copy.deepcopy(data.get("custom_fields") or {}),
            "pids": pids,
            "parent": {
                "id": entry.parent_id,
                "access": {"owned_by": {"user": entry.owner}},
                "communities": (
                    {"ids": list(entry.communities), "default": entry.communities[0]}
                    if entry.communities
                    else {}
                ),
            },
            "versions": {
                "index": 1,
                "is_latest": entry.record is not None,
                "is_latest_draft": True,
            },
            "links": links,
        }
        if draft and entry.draft and entry.draft.errors:
            out["errors"] = copy.deepcopy(entry.draft.errors)
        return out

    def _file_json(self, entry: Entry, f: FileEntry, *, draft: bool) -> dict[str, Any]:
        base = f"{host_url()}/api/records/{entry.id}/{'draft/' if draft else ''}files/"
        base += quote(f.key, safe="")
        out: dict[str, Any] = {
            "key": f.key,
            "created": f.created,
            "updated": f.updated,
            "status": f.status,
            "metadata": None,
            "storage_class": "L",
            "transfer": {"type": "L"},
            "links": {"self": base, "content": f"{base}/content"},
        }
        if draft:
            out["links"]["commit"] = f"{base}/commit"
        if f.status == "completed":
            out |= {
                "checksum": f"md5:{f.md5}",
                "size": f.size,
                "mimetype": mimetypes.guess_type(f.key)[0] or "application/octet-stream",
                "file_id": f.file_id,
                "version_id": f.version_id,
                "bucket_id": entry.bucket_id,
            }
        return out

    def _files_json(self, entry: Entry, *, draft: bool) -> dict[str, Any]:
        data = entry.draft.data if draft and entry.draft else entry.record or {}
        files = entry.draft.files if draft and entry.draft else entry.record_files
        path = f"/api/records/{entry.id}/{'draft/' if draft else ''}files"
        return {
            "enabled": data.get("files_enabled", True),
            "default_preview": None,
            "order": [],
            "entries": [self._file_json(entry, f, draft=draft) for f in list(files.values())],
            "links": {"self": f"{host_url()}{path}"},
        }

    def _review_json(self, entry: Entry, review: Review) -> dict[str, Any]:
        base = f"{host_url()}/api/requests/{review.id}"
        title = ((entry.draft or Draft({}, "")).data.get("metadata") or {}).get("title", "")
        return {
            "id": review.id,
            "number": str(review.number),
            "type": REVIEW_TYPE,
            "title": title,
            "status": review.status,
            "is_open": review.is_open,
            "is_closed": review.is_closed,
            "is_expired": False,
            "expires_at": None,
            "created": review.created,
            "updated": review.updated,
            "created_by": {"user": entry.owner},
            "receiver": {"community": review.community},
            "topic": {"record": entry.id},
            "revision_id": 1,
            "links": {
                "self": base,
                "comments": f"{base}/comments",
                "timeline": f"{base}/timeline",
                "actions": {
                    name: f"{base}/actions/{name}"
                    for name in ("submit", "accept", "decline", "cancel")
                },
            },
        }

    # -- state changes -----------------------------------------------------------------
    def _load(self, body: dict[str, Any], old: dict[str, Any] | None) -> tuple[dict, list] | str:
        """Load a draft body as the service does: keep what is valid, report the rest.

        Returns the data to store and the ``errors``, or the message of an unknown
        vocabulary id (the whole save is then refused).
        """
        metadata = body.get("metadata")
        problems = _metadata_problems(metadata)
        kept = {}
        if isinstance(metadata, dict):
            bad = {p.split(".")[1] for p, _ in problems if p.count(".") >= 1}
            kept = {k: copy.deepcopy(v) for k, v in metadata.items() if k not in bad}
        access = body.get("access") if isinstance(body.get("access"), dict) else {}
        stored_access = {}
        for part in ("record", "files"):
            value = access.get(part, "public")
            if value in ("public", "restricted"):
                stored_access[part] = value
            else:
                problems.append((f"access.{part}", "Must be one of: public, restricted."))
        relation = _unknown_vocabulary(kept)
        if relation is not None:
            return relation
        files = body.get("files") if isinstance(body.get("files"), dict) else {}
        enabled = files.get("enabled", True)
        if not isinstance(enabled, bool):
            problems.append(("files.enabled", "Not a valid boolean."))
            enabled = True
        data: dict[str, Any] = {
            "metadata": kept,
            "access": stored_access,
            "files_enabled": enabled,
            "custom_fields": copy.deepcopy(body.get("custom_fields") or {}),
        }
        pids = body.get("pids")
        if isinstance(pids, dict) and isinstance(pids.get("doi"), dict):
            data["pids"] = {"doi": copy.deepcopy(pids["doi"])}
        elif old and old.get("pids"):
            data["pids"] = copy.deepcopy(old["pids"])
        return data, [{"field": f, "messages": [m]} for f, m in problems]

    @staticmethod
    def _publish_problems(entry: Entry) -> list[tuple[str, str]]:
        """Publish's strict validation: metadata first, then the files."""
        draft = entry.draft
        assert draft is not None
        problems = _metadata_problems(draft.data.get("metadata"))
        if problems:
            return problems
        if draft.data.get("files_enabled", True):
            if not draft.files:
                message = (
                    "Missing uploaded files. To disable files for this record please mark "
                    "it as metadata-only."
                )
                return [("files.enabled", message)]
            if any(f.status != "completed" for f in list(draft.files.values())):
                message = "One or more files have not completed their transfer, please wait."
                return [("files", message)]
        return []

    def _publish(self, entry: Entry) -> None:
        draft = entry.draft
        assert draft is not None
        first = entry.record is None
        entry.record = copy.deepcopy(draft.data)
        for f in draft.files.values():
            f.shared = True
        old = entry.record_files
        entry.record_files = dict(draft.files)
        for key, f in old.items():
            if key not in entry.record_files and f.path is not None:
                f.path.unlink(missing_ok=True)
        external = (draft.data.get("pids") or {}).get("doi", {})
        if first:
            if external.get("provider") == "external" and external.get("identifier"):
                entry.doi = str(external["identifier"])
            else:
                entry.doi = f"{self.doi_prefix}/inveniordm.{entry.id}"
        entry.published_at = self._now()
        entry.draft = None
        entry.revision += 1

    def _close_review(self, entry: Entry, status: str) -> None:
        review = entry.review
        assert review is not None
        review.status = status
        review.updated = self._now()
        if status == "accepted" and review.community not in entry.communities:
            entry.communities.append(review.community)

    def _remove_files(self, files: Iterable[FileEntry]) -> None:
        for f in files:
            if f.path is not None and not f.shared:
                f.path.unlink(missing_ok=True)

    # -- the app -----------------------------------------------------------------------
    def _build(self) -> Flask:
        app = Flask("fake_inveniordm")
        self._guards(app)
        self._record_routes(app)
        self._file_routes(app)
        self._review_routes(app)
        self._other_routes(app)
        inner = app.wsgi_app

        def counting(environ: dict[str, Any], start_response: Any) -> Any:
            stream = _CountingInput(environ["wsgi.input"])
            environ["wsgi.input"] = stream
            try:
                return inner(environ, start_response)
            finally:
                entry = environ.get("fake.log")
                if entry is not None:
                    entry["bytes_read"] = stream.count

        app.wsgi_app = counting  # type: ignore[method-assign]
        return app

    def _guards(self, app: Flask) -> None:
        @app.before_request
        def _check() -> Response | None:
            auth = request.headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else request.args.get("access_token")
            user = self.users.get(token) if token else None
            request.environ["fake.user"] = user
            entry = common.request_log(
                query=request.query_string.decode("latin-1"),
                user=user,
                content_type=request.headers.get("Content-Type"),
                status=None,
                bytes_read=0,
            )
            request.environ["fake.log"] = entry
            self.requests.append(entry)
            limited = self._rate_limit(user)
            if limited is not None:
                return limited
            injected = self._injected()
            if injected is not None:
                return injected
            expected = BODY_TYPES.get(request.endpoint or "")
            ctype = request.headers.get("Content-Type")
            if expected and ctype and ctype != expected:
                return _err(415, f"Invalid 'Content-Type' header. Expected one of: {expected}")
            return None

        @app.after_request
        def _headers(resp: Response) -> Response:
            limit = request.environ.get("fake.rate")
            if limit is not None:
                resp.headers.update(limit)
            entry = request.environ.get("fake.log")
            if entry is not None:
                entry["status"] = resp.status_code
            return resp

    def _rate_limit(self, user: str | None) -> Response | None:
        key = f"user:{user}" if user else f"ip:{request.remote_addr}"
        limit, now = self.rate_limit, self.clock()
        with self.lock:  # Flask-Limiter's window begins with its first request
            start = self._windows.get(key, (now, 0))[0]
            if now >= start + self.rate_window:  # over: this request begins the next
                start = now
                self._windows.pop(key, None)
            start, count, allowed = common.count_in_window(self._windows, key, start, limit)
        reset = start + self.rate_window
        headers = common.rate_headers(limit, max(limit - count, 0), reset, now, allowed)
        request.environ["fake.rate"] = headers
        if allowed:
            return None
        return _err(429, f"Too Many Requests: {limit} per {int(self.rate_window)} second")

    def _record_routes(self, app: Flask) -> None:
        @app.post("/api/records", endpoint="create")
        def _create() -> Response:
            body = _of_type(_json_body(), dict)
            if isinstance(body, Response):
                return body
            if self._user() is None:
                return _err(403, DENIED)
            loaded = self._load(body, None)
            if isinstance(loaded, str):
                return _err(400, loaded)
            data, errors = loaded
            now = self._now()
            with self.lock:
                rid = self._new_id()
                entry = Entry(
                    rid,
                    self._user() or "",
                    self._new_id(),
                    str(uuid.uuid4()),
                    now,
                    Draft(data, now, errors=errors),
                )
                self.entries[rid] = entry
            return _json(self._record_json(entry, draft=True), 201)

        @app.get("/api/records/<rid>/draft")
        @resolved(self._own_draft)
        def _read_draft(entry: Entry, _: Draft) -> Response:
            return _json(self._record_json(entry, draft=True))

        @app.put("/api/records/<rid>/draft", endpoint="update_draft")
        @resolved(self._body_then(self._own_draft, dict))
        def _update_draft(entry: Entry, draft: Draft, body: dict[str, Any]) -> Response:
            loaded = self._load(body, draft.data)
            if isinstance(loaded, str):
                return _err(400, loaded)
            data, errors = loaded
            if not data["files_enabled"] and draft.files:
                message = "You must first delete all files to set the record to be metadata-only."
                errors.append({"field": "files.enabled", "messages": [message]})
                data["files_enabled"] = True
            elif data["files_enabled"] and not draft.files:
                message = (
                    "Missing uploaded files. To disable files for this record please mark "
                    "it as metadata-only."
                )
                errors.append({"field": "files.enabled", "messages": [message]})
            with self.lock:
                draft.data = data
                draft.errors = errors
                draft.updated = self._now()
                entry.revision += 1
            return _json(self._record_json(entry, draft=True))

        @app.post("/api/records/<rid>/draft")
        @resolved(self._published_entry)
        def _edit(entry: Entry) -> Response:
            assert entry.record is not None
            if self._user() != entry.owner:
                return _err(403, DENIED)
            with self.lock:
                if entry.draft is None:
                    files = {k: copy.copy(f) for k, f in entry.record_files.items()}
                    draft = Draft(copy.deepcopy(entry.record), self._now(), files, locked=True)
                    entry.draft = draft
            return _json(self._record_json(entry, draft=True), 201)

        @app.delete("/api/records/<rid>/draft")
        @resolved(self._own_draft)
        def _delete_draft(entry: Entry, draft: Draft) -> Response:
            with self.lock:
                if entry.record is None:
                    self._remove_files(draft.files.values())
                    del self.entries[entry.id]
                else:
                    entry.draft = None
            return Response(status=204)

        @app.post("/api/records/<rid>/draft/actions/publish")
        @resolved(self._own_draft)
        def _publish(entry: Entry, _: Draft) -> Response:
            review = entry.review
            if entry.record is None and review is not None and not review.is_closed:
                return _err(
                    400,
                    "You cannot publish a draft with an open review request. "
                    "Please cancel the review request first.",
                )
            problems = self._publish_problems(entry)
            if problems:
                return _validation(problems)
            with self.lock:
                self._publish(entry)
            return _json(self._record_json(entry, draft=False), 202)

        @app.get("/api/records/<rid>")
        @resolved(self._readable_record)
        def _read_record(entry: Entry) -> Response:
            return _json(self._record_json(entry, draft=False))

        @app.get("/api/records")
        def _search() -> Response:
            query = request.args.get("q", "").strip().lower()
            with self.lock:
                hits = [
                    e
                    for e in self.entries.values()
                    if e.record is not None
                    and e.record.get("access", {}).get("record", "public") == "public"
                    and query in str((e.record.get("metadata") or {}).get("title", "")).lower()
                ]
            return self._page(hits, "/api/records", draft=False)

        @app.get("/api/user/records")
        def _user_records() -> Response:
            user = self._user()
            if user is None:
                return _err(403, DENIED)
            query = request.args.get("q", "").strip().lower()
            with self.lock:
                hits = []
                for e in self.entries.values():
                    data = e.draft.data if e.draft else e.record or {}
                    title = str((data.get("metadata") or {}).get("title", "")).lower()
                    if e.owner == user and query in title:
                        hits.append(e)
            return self._page(hits, "/api/user/records", draft=None)

    def _page(self, entries: list[Entry], path: str, *, draft: bool | None) -> Response:
        """One page of ``entries`` in InvenioRDM's search-result shape."""
        try:
            size = int(request.args.get("size", DEFAULT_PAGE_SIZE))
            page = int(request.args.get("page", 1))
        except ValueError:
            return _err(400, "Invalid querystring parameters.")
        if size < 1 or page < 1 or (page - 1) * size >= MAX_RESULTS:
            return _err(400, "Invalid querystring parameters.")
        sort = request.args.get("sort", "newest")
        if sort == "oldest":
            entries.sort(key=lambda e: (e.created, e.id))
        else:
            entries.sort(key=lambda e: (e.created, e.id), reverse=True)
        total = len(entries)
        chosen = entries[(page - 1) * size : page * size]
        hits = [
            self._record_json(e, draft=e.draft is not None if draft is None else draft)
            for e in chosen
        ]
        args = {"size": size, "sort": sort}
        if request.args.get("q"):
            args["q"] = request.args["q"]

        def link(p: int) -> str:
            return f"{host_url()}{path}?{urlencode(sorted({**args, 'page': p}.items()))}"

        links = {"self": link(page)}
        if page > 1 and (page - 2) * size < total:
            links["prev"] = link(page - 1)
        if page * size < total:
            links["next"] = link(page + 1)
        body = {
            "hits": {"hits": hits, "total": total},
            "sortBy": sort,
            "page": page,
            "links": links,
        }
        return _json(body)

    def _file_routes(self, app: Flask) -> None:
        @app.get("/api/records/<rid>/draft/files")
        @resolved(self._own_draft)
        def _list_draft_files(entry: Entry, _: Draft) -> Response:
            return _json(self._files_json(entry, draft=True))

        @app.post("/api/records/<rid>/draft/files", endpoint="init_files")
        @resolved(self._body_then(self._own_draft, list))
        def _init_files(entry: Entry, draft: Draft, body: list[Any]) -> Response:
            problems = []
            for i, item in enumerate(body):
                key = item.get("key") if isinstance(item, dict) else None
                if not isinstance(key, str) or not key:
                    problems.append((f"{i}.key", MISSING))
            if problems:
                return _validation(problems)
            if draft.locked:
                return _err(403, "Bucket is locked for modifications.")
            if not draft.data.get("files_enabled", True):
                return _err(400, "Files are not enabled for this record.")
            now = self._now()
            with self.lock:
                count = len(draft.files)
                if self.max_files and count <= self.max_files < count + len(body):
                    return _err(
                        400,
                        "Uploading selected files will result in exceeding the max amount "
                        "per record.",
                    )
                keys = [item["key"] for item in body]
                for key in keys:
                    if key in draft.files or keys.count(key) > 1:
                        return _err(400, f"File with key {key} already exists.")
                for key in keys:
                    draft.files[key] = FileEntry(key, now, now)
                draft.updated = now
            return _json(self._files_json(entry, draft=True), 201)

        @app.get("/api/records/<rid>/draft/files/<path:key>")
        @resolved(self._own_file)
        def _read_draft_file(entry: Entry, _: Draft, f: FileEntry) -> Response:
            return _json(self._file_json(entry, f, draft=True))

        @app.put("/api/records/<rid>/draft/files/<path:key>/content", endpoint="put_content")
        @resolved(self._own_file)
        def _put_content(entry: Entry, draft: Draft, entry_file: FileEntry) -> Response:
            refused = self._refuse_content(entry, draft, entry_file)
            if refused is not None:
                return refused
            return self._receive(entry, draft, entry_file, int(request.headers["Content-Length"]))

        @app.get("/api/records/<rid>/draft/files/<path:key>/content")
        @resolved(self._own_file)
        def _get_draft_content(_: Entry, __: Draft, f: FileEntry) -> Response:
            return _send(f)

        @app.post("/api/records/<rid>/draft/files/<path:key>/commit")
        @resolved(self._own_file)
        def _commit(entry: Entry, draft: Draft, f: FileEntry) -> Response:
            if f.path is None:
                # FilesManager.commit raises a bare Exception: InvenioRDM answers a 500
                return _err(500, "Internal server error.")
            if f.size == 0 and not self.allow_empty_files:
                return _err(400, "Empty files are not accepted.")
            with self.lock:
                f.status = "completed"
                f.updated = self._now()
                draft.updated = f.updated
            return _json(self._file_json(entry, f, draft=True))

        @app.delete("/api/records/<rid>/draft/files/<path:key>")
        @resolved(self._own_file)
        def _delete_file(_: Entry, draft: Draft, f: FileEntry) -> Response:
            if draft.locked:
                return _err(403, "Bucket is locked for modifications.")
            with self.lock:
                draft.files.pop(f.key, None)
                self._remove_files([f])
            return Response(status=204)

        @app.get("/api/records/<rid>/files")
        @resolved(self._readable_files)
        def _list_record_files(entry: Entry) -> Response:
            return _json(self._files_json(entry, draft=False))

        @app.get("/api/records/<rid>/files/<path:key>")
        @resolved(self._readable_file)
        def _read_record_file(entry: Entry, f: FileEntry) -> Response:
            return _json(self._file_json(entry, f, draft=False))

        @app.get("/api/records/<rid>/files/<path:key>/content")
        @resolved(self._readable_file)
        def _get_record_content(_: Entry, f: FileEntry) -> Response:
            return _send(f)

    def _refuse_content(self, entry: Entry, draft: Draft, f: FileEntry) -> Response | None:
        """Checks made before a byte of the body is read."""
        if draft.locked:
            return _err(403, "Bucket is locked for modifications.")
        length = common.declared_length()
        if length is None:
            return _err(400, "A Content-Length header is required: the body has no known size.")
        if not length.isdigit():
            return _err(400, "Invalid Content-Length header.")
        if len(f.key) > KEY_MAX_LEN:
            return _err(400, "Filename is too long.")
        if f.status == "completed":
            # LocalTransfer refuses a committed key; the component then removes the file
            with self.lock:
                draft.files.pop(f.key, None)
                self._remove_files([f])
            return _err(400, "The file upload transfer failed, please try again.")
        if int(length) > self.max_file_size:
            return _err(400, "Maximum file size exceeded.")
        used = sum(x.size for x in list(draft.files.values()) if x is not f)
        if used + int(length) > self.quota_size:
            return _err(400, "Bucket quota exceeded.")
        return None

    def _receive(self, entry: Entry, draft: Draft, f: FileEntry, length: int) -> Response:
        target = self.root / uuid.uuid4().hex
        size, digest = common.store_stream(request.stream, target)
        if size != length:
            target.unlink(missing_ok=True)
            with self.lock:
                draft.files.pop(f.key, None)
                self._remove_files([f])
            return _err(400, "The file upload transfer failed, please try again.")
        with self.lock:
            old = f.path
            f.path, f.size, f.md5 = target, size, digest
            f.updated = self._now()
            f.version_id = str(uuid.uuid4())
        if old is not None:
            old.unlink(missing_ok=True)
        return _json(self._file_json(entry, f, draft=True))

    def _review_routes(self, app: Flask) -> None:
        @app.get("/api/records/<rid>/draft/review")
        @resolved(self._own_draft)
        def _get_review(entry: Entry, _: Draft) -> Response:
            if entry.review is None:
                return _err(404, "Review for draft not found")
            return _json(self._review_json(entry, entry.review))

        @app.put("/api/records/<rid>/draft/review", endpoint="put_review")
        @resolved(self._body_then(self._own_draft, dict))
        def _put_review(entry: Entry, _: Draft, body: dict[str, Any]) -> Response:
            if entry.review is not None and entry.review.is_open:
                return _err(400, "An open review cannot be deleted.")
            if entry.record is not None:
                return _err(400, "You cannot create a review for an already published record.")
            if body.get("type") != REVIEW_TYPE:
                return _validation([("type", "Invalid review type.")])
            receiver = body.get("receiver")
            ref = receiver.get("community") if isinstance(receiver, dict) else None
            community = self._community(ref)
            if community is None:
                return _err(404, NOT_FOUND)
            now = self._now()
            with self.lock:
                entry.review = Review(
                    str(uuid.uuid4()), next(self._numbers), community.id, now, now
                )
            return _json(self._review_json(entry, entry.review))

        @app.delete("/api/records/<rid>/draft/review")
        @resolved(self._own_draft)
        def _delete_review(entry: Entry, _: Draft) -> Response:
            if entry.review is None:
                return _err(404, "Review for draft not found")
            if entry.review.is_open:
                return _err(400, "An open review cannot be deleted.")
            with self.lock:
                entry.review = None
            return Response(status=204)

        @app.post("/api/records/<rid>/draft/actions/submit-review", endpoint="submit_review")
        @resolved(self._body_then(self._draft))
        def _submit_review(entry: Entry, _: Draft, __: Any) -> Response:
            review = entry.review
            if review is None:
                return _err(404, "Review for draft not found")
            if self._user() != entry.owner:
                return _err(403, DENIED)
            if review.status != "created":
                return _err(400, f"The request is already {review.status}.")
            problems = self._publish_problems(entry)
            if problems:
                return _validation(problems)
            with self.lock:
                review.status = "submitted"
                review.updated = self._now()
                community = self.communities[review.community]
                if entry.owner in community.curators:
                    self._close_review(entry, "accepted")
                    self._publish(entry)
            return _json(self._review_json(entry, review), 202)

        @app.get("/api/requests/<req_id>")
        @resolved(self._request)
        def _get_request(entry: Entry, review: Review) -> Response:
            return _json(self._review_json(entry, review))

        @app.post("/api/requests/<req_id>/actions/<action>")
        @resolved(self._request)
        def _request_action(entry: Entry, review: Review, action: str) -> Response:
            curators = self.communities[review.community].curators
            allowed = {"accept": curators, "decline": curators, "cancel": {entry.owner}}
            if action not in allowed:
                return _err(404, "Not found.")
            if self._user() not in allowed[action]:
                return _err(403, DENIED)
            if not review.is_open:
                return _err(400, f"Invalid action {action} on a request in status {review.status}.")
            if action == "accept":
                problems = self._publish_problems(entry)
                if problems:
                    return _validation(problems)
            with self.lock:
                status = {"accept": "accepted", "decline": "declined", "cancel": "cancelled"}
                self._close_review(entry, status[action])
                if action == "accept":
                    self._publish(entry)
            return _json(self._review_json(entry, review))

    def _request(self, req_id: str) -> tuple[Entry, Review] | Response:
        for entry in list(self.entries.values()):
            review = entry.review
            if review is not None and review.id == req_id:
                curators = self.communities[review.community].curators
                if self._user() != entry.owner and self._user() not in curators:
                    return _err(403, DENIED)
                return entry, review
        return _err(404, NOT_FOUND)

    def _other_routes(self, app: Flask) -> None:
        @app.get("/api/vocabularies/<vocabulary>/<vid>")
        def _vocabulary(vocabulary: str, vid: str) -> Response:
            table = VOCABULARIES.get(vocabulary)
            if table is None or vid not in table:
                return _err(404, NOT_FOUND)
            out: dict[str, Any] = {
                "id": vid,
                "type": vocabulary,
                "title": {"en": table[vid]},
                "revision_id": 1,
                "links": {"self": f"{host_url()}/api/vocabularies/{vocabulary}/{vid}"},
            }
            if vocabulary == "licenses":
                out["props"] = {"scheme": "spdx", "url": f"https://spdx.org/licenses/{vid}"}
            return _json(out)

        @app.get("/api/communities/<ref>")
        def _read_community(ref: str) -> Response:
            community = self._community(ref)
            if community is None:
                return _err(404, NOT_FOUND)
            return _json(
                {
                    "id": community.id,
                    "slug": community.slug,
                    "metadata": {"title": community.title},
                    "links": {"self": f"{host_url()}/api/communities/{community.id}"},
                }
            )


class _CountingInput:
    """``wsgi.input`` that counts what the app read, so tests can see a refusal read nothing."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self.raw.readline(size)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


# -- module helpers ---------------------------------------------------------------------
def _validation(problems: list[tuple[str, str]]) -> Response:
    errors = [{"field": f, "messages": [m]} for f, m in problems]
    return _err(400, "A validation error occurred.", errors)


def _json_body() -> Any:
    raw = request.get_data()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return _err(400, "Unable to decode JSON data in request body.")


def _of_type(body: Any, kind: type) -> Any:
    """``body`` if it is a ``kind`` (or already a refusal), else flask-resources' 400."""
    return body if isinstance(body, (kind, Response)) else _validation(SCHEMA_ERROR)


def _send(f: FileEntry) -> Response:
    if f.path is None:
        return _err(404, f"File with key {f.key} not found.")
    resp = send_file(
        f.path,
        mimetype=mimetypes.guess_type(f.key)[0] or "application/octet-stream",
        conditional=False,
    )
    resp.headers["Content-MD5"] = f.md5
    return resp


def _decorate(metadata: dict[str, Any]) -> None:
    """Add what InvenioRDM adds on dump: vocabulary titles and a person's ``name``."""
    rtype = metadata.get("resource_type")
    if isinstance(rtype, dict) and rtype.get("id") in RESOURCE_TYPES:
        rtype["title"] = {"en": RESOURCE_TYPES[rtype["id"]]}
    for right in metadata.get("rights") or []:
        if isinstance(right, dict) and right.get("id") in LICENSES:
            right["title"] = {"en": LICENSES[right["id"]]}
    for lang in metadata.get("languages") or []:
        if isinstance(lang, dict) and lang.get("id") in LANGUAGES:
            lang["title"] = {"en": LANGUAGES[lang["id"]]}
    for group in ("creators", "contributors"):
        for person in metadata.get(group) or []:
            po = person.get("person_or_org") if isinstance(person, dict) else None
            if isinstance(po, dict) and po.get("type") == "personal" and po.get("family_name"):
                given = po.get("given_name")
                po["name"] = f"{po['family_name']}, {given}" if given else po["family_name"]


def _valid_date(text: str) -> tuple[int, int, int, int, int, int] | None:
    """An EDTF level-0 date as (lower, upper) bounds, or None."""
    m = _DATE.fullmatch(text)
    if not m:
        return None
    year, month, day = int(m[1]), m[2], m[3]
    if month is None:
        return (year, 1, 1, year, 12, 31)
    mon = int(month)
    if not 1 <= mon <= 12:
        return None
    if day is None:
        return (year, mon, 1, year, mon, 31)
    try:
        dt.date(year, mon, int(day))
    except ValueError:
        return None
    return (year, mon, int(day), year, mon, int(day))


def _edtf_ok(value: Any) -> bool:
    """EDTF level 0: a year, year-month, full date, or a chronological interval of those."""
    if not isinstance(value, str):
        return False
    parts = value.split("/")
    if len(parts) == 1:
        return _valid_date(parts[0]) is not None
    if len(parts) != 2:
        return False
    lower, upper = _valid_date(parts[0]), _valid_date(parts[1])
    return lower is not None and upper is not None and lower[:3] <= upper[3:]


def _person_problems(prefix: str, person: Any, *, role_required: bool) -> list[tuple[str, str]]:
    if not isinstance(person, dict):
        return [(prefix, "Invalid input type.")]
    out: list[tuple[str, str]] = []
    po = person.get("person_or_org")
    if not isinstance(po, dict):
        out.append((f"{prefix}.person_or_org", MISSING))
    elif po.get("type") not in PERSON_TYPES:
        out.append(
            (
                f"{prefix}.person_or_org.type",
                "Invalid value. Choose one of ['organizational', 'personal'].",
            )
        )
    elif po["type"] == "personal" and not po.get("family_name"):
        out.append((f"{prefix}.person_or_org.family_name", "Family name cannot be blank."))
    elif po["type"] == "organizational" and not po.get("name"):
        out.append((f"{prefix}.person_or_org.name", "Name cannot be blank."))
    role = person.get("role")
    if role_required and not (isinstance(role, dict) and role.get("id")):
        out.append((f"{prefix}.role", MISSING))
    for i, aff in enumerate(person.get("affiliations") or []):
        if not isinstance(aff, dict) or not (aff.get("id") or aff.get("name")):
            message = "An existing id or a free text name must be present."
            out.append((f"{prefix}.affiliations.{i}", message))
    return out


def _metadata_problems(md: Any) -> list[tuple[str, str]]:
    """What InvenioRDM's metadata schema reports, as (dotted field, message)."""
    if md is None:
        md = {}
    if not isinstance(md, dict):
        return [("metadata", "Invalid input type.")]
    out: list[tuple[str, str]] = []
    rtype = md.get("resource_type")
    if rtype is None:
        out.append(("metadata.resource_type", MISSING))
    elif not isinstance(rtype, dict) or not rtype.get("id"):
        out.append(("metadata.resource_type.id", MISSING))
    title = md.get("title")
    if title is None:
        out.append(("metadata.title", MISSING))
    elif not isinstance(title, str):
        out.append(("metadata.title", "Not a valid string."))
    elif len(title.strip()) < 3:
        out.append(("metadata.title", "Shorter than minimum length 3."))
    date = md.get("publication_date")
    if date is None:
        out.append(("metadata.publication_date", MISSING))
    elif not _edtf_ok(date):
        out.append(("metadata.publication_date", "Please provide a valid date or interval."))
    creators = md.get("creators")
    if creators is None or creators == []:
        out.append(("metadata.creators", MISSING))
    elif not isinstance(creators, list):
        out.append(("metadata.creators", "Not a valid list."))
    else:
        for i, c in enumerate(creators):
            out += _person_problems(f"metadata.creators.{i}", c, role_required=False)
    contributors = md.get("contributors")
    if contributors is not None:
        if not isinstance(contributors, list):
            out.append(("metadata.contributors", "Not a valid list."))
        else:
            for i, c in enumerate(contributors):
                out += _person_problems(f"metadata.contributors.{i}", c, role_required=True)
    for name in ("rights", "languages", "subjects", "related_identifiers", "funding"):
        value = md.get(name)
        if value is not None and not isinstance(value, list):
            out.append((f"metadata.{name}", "Not a valid list."))
    for i, right in enumerate(_items(md, "rights")):
        if not isinstance(right, dict) or not (right.get("id") or right.get("title")):
            message = "An existing id or a free text title must be present"
            out.append((f"metadata.rights.{i}.rights", message))
        elif right.get("id") and len(right) > 1:
            message = (
                "Only an existing id or free text title/description/link is accepted, "
                "but not both cases at the same time"
            )
            out.append((f"metadata.rights.{i}.rights", message))
    for i, lang in enumerate(_items(md, "languages")):
        if not isinstance(lang, dict) or not lang.get("id"):
            out.append((f"metadata.languages.{i}.id", MISSING))
    for i, rel in enumerate(_items(md, "related_identifiers")):
        if not isinstance(rel, dict):
            out.append((f"metadata.related_identifiers.{i}", "Invalid input type."))
            continue
        if not rel.get("identifier"):
            out.append((f"metadata.related_identifiers.{i}.identifier", MISSING))
        rtype_rel = rel.get("relation_type")
        if not (isinstance(rtype_rel, dict) and rtype_rel.get("id")):
            out.append((f"metadata.related_identifiers.{i}.relation_type", MISSING))
    for i, fund in enumerate(_items(md, "funding")):
        if not isinstance(fund, dict) or not isinstance(fund.get("funder"), dict):
            out.append((f"metadata.funding.{i}.funder", MISSING))
    for name, low, high in (("version", 0, 191), ("description", 3, None), ("publisher", 0, None)):
        value = md.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            out.append((f"metadata.{name}", "Not a valid string."))
        elif len(value) < low:
            out.append((f"metadata.{name}", f"Shorter than minimum length {low}."))
        elif high is not None and len(value) > high:
            out.append((f"metadata.{name}", f"Longer than maximum length {high}."))
    return out


def _items(md: dict[str, Any], name: str) -> list[Any]:
    value = md.get(name)
    return value if isinstance(value, list) else []


def _unknown_vocabulary(md: dict[str, Any]) -> str | None:
    """The first vocabulary id the instance does not know, as InvenioRDM words it."""
    checks: list[tuple[Any, Any]] = []
    rtype = md.get("resource_type")
    if isinstance(rtype, dict) and rtype.get("id"):
        checks.append((rtype["id"], RESOURCE_TYPES))
    checks += [
        (r["id"], LICENSES) for r in _items(md, "rights") if isinstance(r, dict) and r.get("id")
    ]
    checks += [
        (lang["id"], LANGUAGES)
        for lang in _items(md, "languages")
        if isinstance(lang, dict) and lang.get("id")
    ]
    for group in ("creators", "contributors"):
        for person in _items(md, group):
            role = person.get("role") if isinstance(person, dict) else None
            if isinstance(role, dict) and role.get("id"):
                checks.append((role["id"], ROLES))
    for rel in _items(md, "related_identifiers"):
        if not isinstance(rel, dict):
            continue
        rtype_rel = rel.get("relation_type")
        if isinstance(rtype_rel, dict) and rtype_rel.get("id"):
            checks.append((rtype_rel["id"], RELATION_TYPES))
        rel_type = rel.get("resource_type")
        if isinstance(rel_type, dict) and rel_type.get("id"):
            checks.append((rel_type["id"], RESOURCE_TYPES))
    for value, table in checks:
        if value not in table:
            return f"Invalid value {value}."
    return None
