"""A small client of Zenodo's classic deposition API and its bucket (files-REST) API.

Boundary: this module speaks HTTP to Zenodo and nothing else. It knows Zenodo's URLs,
status codes and error bodies, and turns every failure into a ``common.errors`` exception
(with ``raise ... from exc``); it knows nothing of RO-Crates, RDS routes or Flask. The
session and the clock are injected so tests drive retries without waiting.

Fault policy, in one place (``_send``, through ``common.retry``):
- 429 is waited out (``Retry-After``, bounded by ``max_wait``) for every call whose body
  can be sent again -- Zenodo did not process the request;
- 502/503/504 and connection errors are retried with capped exponential back-off only for
  idempotent calls (GET, PUT of JSON, DELETE, bucket PUTs);
- a streamed upload is sent again only while its body says it can be (``replayable()``:
  the backend keeps a replay window of the first MiBs on disk);
- before every call, uploads included, ``RATE_BUDGET`` waits when the token's
  ``X-RateLimit-Remaining`` is spent until its ``X-RateLimit-Reset``.
The token goes only into the ``Authorization`` header of each request (never onto the
shared session, never into a message).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import requests
from requests.exceptions import ChunkedEncodingError

from common import outside
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
from common.logs import redact
from common.retry import Policy, RateBudget, token_key
from common.retry import retry_after as retry_after  # the parser's old home, still imported
from common.upstream import Upstream
from common.useragent import USER_AGENT

log = logging.getLogger("rds.zenodo")
Json = dict[str, Any]


class Replayable(Protocol):
    """An upload body: iterable once per attempt, sized, and able to say if it can go again."""

    def __iter__(self) -> Iterator[bytes]: ...
    def __len__(self) -> int: ...
    def replayable(self) -> bool: ...


PAGE_SIZE = 100  # Zenodo's maximum page size
MAX_PAGES = 1000  # 100 000 depositions: a bound, not a limit anyone reaches
SCOPE_WRITE = "deposit:write"
SCOPE_ACTIONS = "deposit:actions"
# X-RateLimit-* of Zenodo's answers, per token: calls are paced before the limit is hit
RATE_BUDGET = RateBudget()


ZENODO = Upstream(
    {
        Unauthorized: (
            "Zenodo refused the token (expired or revoked): re-authorize Zenodo in RDS",
            "userId",
        ),
        Forbidden: (
            "Zenodo refused this action ({message}); the token needs the scope "
            "'{scope}': re-authorize Zenodo in RDS granting it",
            "userId",
        ),
        NotFound: ("Zenodo has no such resource ({message})", None),
        Conflict: ("Zenodo refused the change: {message}", None),
        PayloadTooLarge: ("Zenodo refused the size: {message}", None),
        TooManyRequests: ("Zenodo's rate limit is reached; try later", None),
        UpstreamUnavailable: ("Zenodo is unavailable ({status})", None),
        UpstreamTimeout: ("Zenodo timed out (504)", None),
    },
    "Zenodo answered {status}: {message}",
    faults={
        UpstreamTimeout: "Zenodo did not answer {method} in time",
        UpstreamUnavailable: "Zenodo cannot be reached ({method})",
        UpstreamError: "Zenodo's answer to {method} was unreadable",
    },
)


class ZenodoValidationError(BadRequest):
    """Zenodo refused metadata; ``errors`` holds ``(zenodo_field, message)`` pairs."""

    def __init__(self, detail: str, errors: list[tuple[str, str]]) -> None:
        super().__init__(detail, field=errors[0][0] if errors else None)
        self.errors = errors


def validation_errors(body: Any) -> list[tuple[str, str]]:
    """``(field, message)`` pairs from both error shapes Zenodo answers.

    Classic: ``errors: [{"field", "message"}]``; InvenioRDM: ``errors: [{"field",
    "messages": [...]}]`` (sometimes nested dicts of messages).
    """
    out: list[tuple[str, str]] = []
    errors = body.get("errors") if isinstance(body, dict) else None
    for err in errors if isinstance(errors, list) else []:
        if not isinstance(err, dict):
            continue
        field = str(err.get("field") or "")
        messages = err.get("messages", err.get("message"))
        for message in _flatten_messages(messages):
            out.append((field, message))
    return out


def _flatten_messages(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [m for item in value for m in _flatten_messages(item)]
    if isinstance(value, dict):
        return [m for item in value.values() for m in _flatten_messages(item)]
    return []


def json_of(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def message_of(resp: requests.Response) -> str:
    """Zenodo's own short message (redacted, bounded), or the status line."""
    body = json_of(resp)
    text = body.get("message") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text:
        text = f"HTTP {resp.status_code}"
    return redact(text)[:300]


class ZenodoClient:
    """One user's calls to one Zenodo instance (``base_url`` without ``/api``).

    The transport (``_send``, ``_call``, ``_delete``) is shared: a client of another
    Invenio-based service subclasses this one with its own ``upstream`` words, rate
    ``budget`` and ``check`` (``common.inveniordm_client``)."""

    upstream = ZENODO
    budget = RATE_BUDGET

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_wait: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = self.base_url + "/api"
        self._token = token
        self.session = session or outside.session("zenodo")
        self.sleep = sleep
        self.clock = clock
        self.timeout = (connect_timeout, read_timeout)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_wait = max_wait
        self.policy = Policy(
            attempts=self.attempts,
            base=backoff,
            cap=max_backoff,
            exceptions=(requests.ConnectionError, requests.Timeout, ChunkedEncodingError),
            max_wait=max_wait,
            budget=self.budget,
        )
        self.last_attempts = 0  # attempts of the latest call (a client serves one request)

    def __repr__(self) -> str:  # the token stays out of every repr
        return f"ZenodoClient({self.base_url!r})"

    # -- transport ---------------------------------------------------------------------
    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        headers.update(extra or {})
        return headers

    def _own(self, url: str) -> str:
        """Refuse links off this instance: the token must never travel elsewhere."""
        ours, theirs = urlsplit(self.base_url), urlsplit(url)
        if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
            raise UpstreamError("Zenodo answered a link to another host; not following it")
        return url

    def _send(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        replayable: bool | Callable[[], bool] = True,
        **kwargs: Any,
    ) -> requests.Response:
        """One call with the fault policy of the module docstring; returns any answer."""
        kwargs.setdefault("timeout", self.timeout)
        kwargs["headers"] = self._headers(kwargs.get("headers"))

        def once() -> requests.Response:
            self.last_attempts += 1
            return self.session.request(method, self._own(url), **kwargs)

        self.last_attempts = 0
        try:
            return self.policy.run(
                once,
                sleep=self.sleep,
                clock=self.clock,
                idempotent=idempotent,
                replayable=replayable,
                log=self._log_retry,
                key=token_key(self.base_url, self._token) if self._token else None,
            )
        except requests.RequestException as exc:
            raise self.upstream.transport(exc, method=method) from exc

    @staticmethod
    def _log_retry(reason: str, attempt: int, wait: float) -> None:
        log.warning("zenodo.retry reason=%s attempt=%d wait=%.2fs", reason, attempt, wait)

    def check(self, resp: requests.Response, *, scope: str = SCOPE_WRITE) -> requests.Response:
        """Return ``resp`` if 2xx; otherwise raise the matching ``common.errors`` exception."""
        code = resp.status_code
        if code < 300:
            return resp
        message = message_of(resp)
        if code == 400:
            errors = validation_errors(json_of(resp))
            raise ZenodoValidationError(f"Zenodo refused the request: {message}", errors)
        extra = {"scope": scope} if code == 403 else None
        raise ZENODO.error(code, headers=resp.headers, extra=extra, message=message, scope=scope)

    def _call(self, method: str, url: str, *, scope: str = SCOPE_WRITE, **kw: Any) -> Any:
        idempotent = method in ("GET", "PUT", "DELETE", "HEAD")
        resp = self.check(self._send(method, url, idempotent=idempotent, **kw), scope=scope)
        if resp.status_code == 204 or not resp.content:
            return None
        body = json_of(resp)
        if body is None:
            raise UpstreamError(f"Zenodo answered {method} with a body that is not JSON")
        return body

    # -- depositions -------------------------------------------------------------------
    def _dep(self, dep_id: str | int) -> str:
        return f"{self.api}/deposit/depositions/{quote(str(dep_id), safe='')}"

    def list_depositions(self, *, status: str | None = None, pages: int = MAX_PAGES) -> list[Json]:
        """The user's depositions, newest first, up to ``pages`` pages of 100 (all by
        default); ``status`` ``draft`` or ``published`` filters on Zenodo's side."""
        out: list[Json] = []
        for page in range(1, pages + 1):
            params: dict[str, Any] = {"page": page, "size": PAGE_SIZE, "sort": "mostrecent"}
            if status:
                params["status"] = status
            batch = self._call("GET", f"{self.api}/deposit/depositions", params=params)
            if not isinstance(batch, list):
                raise UpstreamError("Zenodo answered the deposition list with no list")
            out.extend(batch)
            if len(batch) < PAGE_SIZE:
                break
        return out

    def create_deposition(self, metadata: Json | None) -> Json:
        body = {"metadata": metadata} if metadata else {}
        return self._call("POST", f"{self.api}/deposit/depositions", json=body)

    def get_deposition(self, dep_id: str | int) -> Json:
        return self._call("GET", self._dep(dep_id))

    def update_deposition(self, dep_id: str | int, metadata: Json) -> Json:
        return self._call("PUT", self._dep(dep_id), json={"metadata": metadata})

    def delete_deposition(self, dep_id: str | int) -> None:
        """Delete a draft; Zenodo answers 201 or 204 and both mean done."""
        self._delete(self._dep(dep_id))

    def _delete(self, url: str) -> None:
        """DELETE, retried on faults; a 404 on a retry means an earlier attempt did it
        (only its answer was lost), so it is a success, not a "no such resource"."""
        try:
            self._call("DELETE", url)
        except NotFound:
            if self.last_attempts < 2:
                raise
            log.info("zenodo.delete.recovered attempts=%d", self.last_attempts)

    def publish(self, dep_id: str | int) -> Json:
        """Publish, safe to retry: after a timeout or 5xx the deposition is re-read and the
        publish is sent again only if it did not happen (``submitted``/``state``)."""
        url = f"{self._dep(dep_id)}/actions/publish"
        failure: ConnectorError | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                resp = self._send("POST", url, idempotent=False)
            except (UpstreamTimeout, UpstreamUnavailable) as exc:
                failure, resp = exc, None
            if resp is not None and resp.status_code < 500:
                return self._call_body(resp, SCOPE_ACTIONS)
            if resp is not None:
                try:
                    self.check(resp, scope=SCOPE_ACTIONS)
                except ConnectorError as exc:
                    failure = exc
            current = self.get_deposition(dep_id)
            if is_published(current):
                log.info("zenodo.publish.recovered id=%s attempt=%d", dep_id, attempt)
                return current
            if attempt < self.attempts:
                self._log_retry("publish-unconfirmed", attempt, self.policy.delay(attempt))
                self.sleep(self.policy.delay(attempt))
        assert failure is not None
        raise failure

    def _call_body(self, resp: requests.Response, scope: str) -> Json:
        self.check(resp, scope=scope)
        body = json_of(resp)
        if not isinstance(body, dict):
            raise UpstreamError("Zenodo answered the publish with no deposition")
        return body

    # -- files -------------------------------------------------------------------------
    def bucket_url(self, bucket: str, key: str) -> str:
        return f"{bucket.rstrip('/')}/{quote(key, safe='')}"

    def list_bucket(self, bucket: str) -> list[Json]:
        """The bucket's objects: ``[{"key", "size", "checksum": "md5:..."}]``."""
        body = self._call("GET", bucket)
        contents = body.get("contents") if isinstance(body, dict) else None
        if not isinstance(contents, list):
            raise UpstreamError("Zenodo answered the bucket listing without contents")
        return contents

    def put_object(self, bucket: str, key: str, body: Replayable, size: int) -> Json:
        """Stream ``body`` (exactly ``size`` bytes; ``len(body)`` must say so) into the bucket.

        Paced and retried like any call while ``body.replayable()`` holds (a 429, a
        502/503/504, a reset): ``requests`` iterates the body afresh for each attempt.
        ``requests`` sends ``Content-Length`` because ``body`` has ``__len__``; chunked
        encoding, which Zenodo refuses, never happens.
        """
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        resp = self._send(
            "PUT",
            self.bucket_url(bucket, key),
            idempotent=True,
            replayable=body.replayable,
            data=body,
            headers=headers,
        )
        self.check(resp)
        answer = json_of(resp)
        if not isinstance(answer, dict):
            raise UpstreamError("Zenodo answered the upload with no JSON object")
        return answer

    def get_object(self, bucket: str, key: str, limit: int) -> bytes | None:
        """A small object's bytes (at most ``limit``; ``None`` if absent or larger)."""
        url = self.bucket_url(bucket, key)
        resp = self._send("GET", url, idempotent=True, stream=True)
        with resp:
            if resp.status_code == 404:
                return None
            self.check(resp)
            out = bytearray()
            for chunk in resp.iter_content(65536):
                out += chunk
                if len(out) > limit:
                    return None
            return bytes(out)

    def delete_object(self, bucket: str, key: str) -> None:
        self._delete(self.bucket_url(bucket, key))

    def list_files(self, dep_id: str | int) -> list[Json]:
        """The classic files listing: ``[{"id", "filename", "filesize", "checksum"}]``."""
        body = self._call("GET", f"{self._dep(dep_id)}/files")
        if not isinstance(body, list):
            raise UpstreamError("Zenodo answered the file list with no list")
        return body

    def rename_file(self, dep_id: str | int, file_id: str, new_key: str) -> Json:
        url = f"{self._dep(dep_id)}/files/{quote(file_id, safe='')}"
        return self._call("PUT", url, json={"filename": new_key})

    # -- liveness ----------------------------------------------------------------------
    def ping(self) -> int:
        """Status of one deposition listing (401 without a token means: the API is there).

        Sent once: the caller (login) owns the retry loop and its bound."""
        url = f"{self.api}/deposit/depositions"
        resp = self._send("GET", url, idempotent=False, replayable=False)
        resp.close()
        return resp.status_code


def is_published(deposition: Json) -> bool:
    """Zenodo's own signs of a finished publish."""
    return bool(deposition.get("submitted")) and deposition.get("state") == "done"
