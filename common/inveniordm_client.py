"""A small client of InvenioRDM's records API: drafts, draft files, reviews, vocabularies.

Boundary: HTTP to one InvenioRDM instance and nothing else (no RO-Crate, no RDS route, no
Flask). The transport is ``ZenodoClient``'s (the same Invenio family): every call goes
through one ``retry.Policy`` and a ``RateBudget`` keyed by the token's hash and fed by
``X-RateLimit-*``; 429 is waited out, 502/503/504 and connection errors are retried only
for calls that may be sent again; streamed content is never re-sent. Errors come from the
one table in ``common.upstream`` with InvenioRDM's words; the token only ever travels in
the ``Authorization`` header of a request to this instance.

InvenioRDM's 403 means three things (it never answers 401): a token it does not accept
(the request ran as a guest), another user's draft, or a published record's locked files.
``check`` tells them apart: "Bucket is locked" is a 409; otherwise one cheap authenticated
probe (``GET /api/user/records?size=1``, which a guest cannot read) decides: 200 means the
token is good, so the record is not this user's (404, as RDS callers expect for a project
that is not theirs); anything else means the token is not accepted (401: re-authorize).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import requests

from common.errors import (
    BadRequest,
    Conflict,
    ConnectorError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from common.retry import RateBudget
from common.upstream import Upstream
from common.zenodo_client import ZenodoClient, json_of, message_of, validation_errors

log = logging.getLogger("rds.inveniordm")
Json = dict[str, Any]

PAGE_SIZE = 100
MAX_PAGES = 1000
REVIEW_TYPE = "community-submission"
RATE_BUDGET = RateBudget()

INVENIORDM = Upstream(
    {
        Unauthorized: (
            "InvenioRDM does not accept the token (expired, revoked or mistyped): renew it in RDS",
            "userId",
        ),
        Forbidden: ("InvenioRDM refused this action ({message})", "userId"),
        NotFound: ("InvenioRDM has no such resource ({message})", None),
        Conflict: ("InvenioRDM refused the change: {message}", None),
        PayloadTooLarge: ("InvenioRDM refused the size: {message}", None),
        TooManyRequests: ("InvenioRDM's rate limit is reached; try later", None),
        UpstreamUnavailable: ("InvenioRDM is unavailable ({status})", None),
        UpstreamTimeout: ("InvenioRDM timed out (504)", None),
    },
    "InvenioRDM answered {status}: {message}",
    faults={
        UpstreamTimeout: "InvenioRDM did not answer {method} in time",
        UpstreamUnavailable: "InvenioRDM cannot be reached ({method})",
        UpstreamError: "InvenioRDM's answer to {method} was unreadable",
    },
)


class InvenioValidationError(BadRequest):
    """InvenioRDM refused a request (400); ``errors`` holds its ``(field, message)`` pairs,
    ``message`` its top-level words (the only ones for "Invalid value <id>.")."""

    def __init__(self, detail: str, errors: list[tuple[str, str]], message: str) -> None:
        super().__init__(detail, field=errors[0][0] if errors else None)
        self.errors = errors
        self.message = message


class InvenioRDMClient(ZenodoClient):
    """One user's calls to one InvenioRDM instance (``base_url`` without ``/api``)."""

    upstream = INVENIORDM
    budget = RATE_BUDGET

    def __repr__(self) -> str:
        return f"InvenioRDMClient({self.base_url!r})"

    @staticmethod
    def _log_retry(reason: str, attempt: int, wait: float) -> None:
        log.warning("inveniordm.retry reason=%s attempt=%d wait=%.2fs", reason, attempt, wait)

    def check(self, resp: requests.Response, *, scope: str = "") -> requests.Response:
        """``resp`` if 2xx, else the matching error (403 told apart, see the docstring)."""
        code = resp.status_code
        if code < 300:
            return resp
        message = message_of(resp)
        if code == 400:
            errors = validation_errors(json_of(resp))
            raise InvenioValidationError(
                f"InvenioRDM refused the request: {message}", errors, message
            )
        if code == 403:
            raise self._forbidden(message)
        raise INVENIORDM.error(code, headers=resp.headers, message=message)

    def _forbidden(self, message: str) -> ConnectorError:
        if "locked" in message.lower():
            return Conflict(
                "the record is published: its files can no longer change", field="projectId"
            )
        if self.token_accepted():
            return NotFound("no such project of this user on InvenioRDM", field="projectId")
        return INVENIORDM.error(401, message=message)

    def token_accepted(self) -> bool:
        """Whether the instance logs the token in (a guest may not list user records)."""
        if not self._token:
            return False
        url = f"{self.api}/user/records"
        resp = self._send("GET", url, idempotent=True, params={"size": 1})
        resp.close()
        return resp.status_code == 200

    # -- records and drafts ------------------------------------------------------------
    def _rec(self, rid: str) -> str:
        return f"{self.api}/records/{quote(rid, safe='')}"

    def list_user_records(self) -> list[Json]:
        """Every draft and record of the user, all pages (oldest first: stable paging)."""
        out: dict[str, Json] = {}
        for page in range(1, MAX_PAGES + 1):
            params = {"page": page, "size": PAGE_SIZE, "sort": "oldest"}
            body = self._call("GET", f"{self.api}/user/records", params=params)
            hits = (body or {}).get("hits") or {}
            batch = hits.get("hits")
            if not isinstance(batch, list):
                raise UpstreamError("InvenioRDM answered the record list without hits")
            out.update((str(h.get("id")), h) for h in batch if isinstance(h, dict))
            total = hits.get("total")
            total = total.get("value") if isinstance(total, dict) else total
            done = not batch or not ((body.get("links") or {}).get("next"))
            if done or (isinstance(total, int) and page * PAGE_SIZE >= total):
                break
        return list(out.values())

    def create_draft(self, body: Json) -> Json:
        return self._call("POST", f"{self.api}/records", json=body)

    def read_draft(self, rid: str) -> Json:
        return self._call("GET", f"{self._rec(rid)}/draft")

    def read_record(self, rid: str) -> Json:
        return self._call("GET", self._rec(rid))

    def update_draft(self, rid: str, body: Json) -> Json:
        return self._call("PUT", f"{self._rec(rid)}/draft", json=body)

    def delete_draft(self, rid: str) -> None:
        self._delete(f"{self._rec(rid)}/draft")

    def publish(self, rid: str | int) -> Json:
        """Publish (202); after a lost answer the record is read back before giving up."""
        try:
            return self._call("POST", f"{self._rec(str(rid))}/draft/actions/publish")
        except (UpstreamTimeout, UpstreamUnavailable, UpstreamError):
            record = self._try(self.read_record, str(rid))
            if record is not None and record.get("is_published"):
                log.info("inveniordm.publish.recovered id=%s", rid)
                return record
            raise

    @staticmethod
    def _try(read: Any, rid: str) -> Json | None:
        try:
            found: Json = read(rid)
        except ConnectorError:
            return None
        return found

    # -- reviews (community submission) ------------------------------------------------
    def read_review(self, rid: str) -> Json | None:
        try:
            return self._call("GET", f"{self._rec(rid)}/draft/review")
        except NotFound:
            return None

    def put_review(self, rid: str, community: str) -> Json:
        body = {"receiver": {"community": community}, "type": REVIEW_TYPE}
        return self._call("PUT", f"{self._rec(rid)}/draft/review", json=body)

    def submit_review(self, rid: str) -> Json:
        url = f"{self._rec(rid)}/draft/actions/submit-review"
        return self._call("POST", url, json={})

    # -- draft files -------------------------------------------------------------------
    def file_url(self, rid: str, key: str, *, draft: bool = True) -> str:
        """A key keeps its ``/``: InvenioRDM routes keys as paths."""
        part = "draft/files" if draft else "files"
        return f"{self._rec(rid)}/{part}/{quote(key, safe='/')}"

    def list_entries(self, rid: str, *, draft: bool = True) -> list[Json]:
        """The entries (``key``, ``status``, ``size``, ``checksum``) of a draft or record."""
        part = "draft/files" if draft else "files"
        body = self._call("GET", f"{self._rec(rid)}/{part}")
        entries = body.get("entries") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise UpstreamError("InvenioRDM answered the file list without entries")
        return [e for e in entries if isinstance(e, dict)]

    def init_file(self, rid: str, key: str) -> None:
        """Announce ``key`` (pending); not retried on faults: a second init is refused."""
        url = f"{self._rec(rid)}/draft/files"
        self.check(self._send("POST", url, idempotent=False, json=[{"key": key}]))

    def put_content(self, rid: str, key: str, body: Iterable[bytes], size: int) -> None:
        """Stream exactly ``size`` bytes as the key's content (never re-sent)."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        data: Any = body if size else b"".join(body)  # requests sends len 0 chunked
        url = f"{self.file_url(rid, key)}/content"
        resp = self._send(
            "PUT", url, idempotent=False, replayable=False, data=data, headers=headers
        )
        self.check(resp).close()

    def commit(self, rid: str, key: str) -> Json:
        """Complete the upload; a repeated commit changes nothing, so it is retried."""
        url = f"{self.file_url(rid, key)}/commit"
        answer = self.check(self._send("POST", url, idempotent=True))
        body = json_of(answer)
        if not isinstance(body, dict):
            raise UpstreamError("InvenioRDM answered the commit with no file entry")
        return body

    def open_content(self, rid: str, key: str) -> requests.Response:
        """The key's content as a streamed answer (the caller closes it)."""
        url = f"{self.file_url(rid, key)}/content"
        return self.check(self._send("GET", url, idempotent=True, stream=True))

    def delete_file(self, rid: str, key: str) -> None:
        self._delete(self.file_url(rid, key))

    # -- vocabularies and liveness -----------------------------------------------------
    def has_term(self, vocabulary: str, term: str) -> bool:
        """Whether the instance's ``vocabulary`` holds ``term`` (a licence id, say)."""
        url = f"{self.api}/vocabularies/{vocabulary}/{quote(term, safe='')}"
        try:
            self._call("GET", url)
        except NotFound:
            return False
        return True

    def ping(self) -> int:
        """Status of one public search (sent once; login owns the retries)."""
        resp = self._send("GET", f"{self.api}/records", idempotent=False, params={"size": 1})
        resp.close()
        return resp.status_code
