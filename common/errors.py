"""The connector's exception family and its one rendering as RFC 9457 problem details.

Every error a function can answer with is a ``ConnectorError`` subclass that knows its HTTP
status and a short title, so code deep in a backend raises the domain error and never
touches the web framework. ``problem_body`` is the only place that turns one into JSON; an
exception outside the family becomes a generic 500 that says nothing about its cause
(its cause may carry a URL, a token or a path).
"""

from __future__ import annotations

from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://rds-connector.invalid/problems/"


class ConnectorError(Exception):
    """Base of every error answered to the caller; ``status`` and ``title`` are per class."""

    status: int = 500
    title: str = "Internal error"
    slug: str = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.field = field
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


class BadRequest(ConnectorError):
    status, title, slug = 400, "Bad request", "bad-request"


class Unauthorized(ConnectorError):
    status, title, slug = 401, "Missing or invalid credentials", "unauthorized"


class Forbidden(ConnectorError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(ConnectorError):
    status, title, slug = 404, "Not found", "not-found"


class MethodNotAllowed(ConnectorError):
    status, title, slug = 405, "Method not allowed", "method-not-allowed"


class RequestTimeout(ConnectorError):
    status, title, slug = 408, "Request timeout", "request-timeout"


class Conflict(ConnectorError):
    status, title, slug = 409, "Conflict with the resource's state", "conflict"


class PayloadTooLarge(ConnectorError):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(ConnectorError):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


class RequestHeaderFieldsTooLarge(ConnectorError):
    status, title, slug = 431, "Request header fields too large", "headers-too-large"


class UnprocessableContent(ConnectorError):
    status, title, slug = 422, "Unprocessable content", "unprocessable"


class TooManyRequests(ConnectorError):
    status, title, slug = 429, "Too many requests", "rate-limited"


class InsufficientStorage(ConnectorError):
    status, title, slug = 507, "Insufficient storage", "insufficient-storage"


class UpstreamError(ConnectorError):
    """The outside service answered, but not in a way we can use (bad status, bad body)."""

    status, title, slug = 502, "Upstream service failed", "upstream-error"


class UpstreamUnavailable(ConnectorError):
    """The outside service could not be reached or is overloaded; retrying later may help."""

    status, title, slug = 503, "Upstream service unavailable", "upstream-unavailable"


class UpstreamTimeout(ConnectorError):
    status, title, slug = 504, "Upstream service timed out", "upstream-timeout"


class TransferIncomplete(ConnectorError):
    """Some files of a transfer did not make it; ``status`` is the one they share (4xx), or
    502. The per-file report rides in ``extra`` (``files``, ``failed``)."""

    status, title, slug = 502, "Some files did not make it", "transfer-incomplete"

    def __init__(self, detail: str, *, status: int = 502, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.status = status


class ConfigError(Exception):
    """A setting is missing or wrong; raised at start, never answered to a caller.

    One error may carry several ``problems`` (one line each, each naming its setting), so a
    start names every fault at once instead of one per restart.
    """

    def __init__(self, message: str = "", *, problems: list[str] | None = None) -> None:
        self.problems: list[str] = list(problems) if problems else [message]
        if problems and not message:
            count = len(self.problems)
            message = (
                self.problems[0] if count == 1 else f"{count} problems: " + "; ".join(self.problems)
            )
        super().__init__(message)


def problem_body(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str = "about:blank",
    field: str | None = None,
    instance: str | None = None,
    request_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an RFC 9457 problem document; ``field`` names the request field at fault.

    ``success: false`` and ``message`` ride along in every problem: deployed RDS callers read
    ``response.json()["success"]`` from error answers too (the Exporter crashes on a body
    without it, and the user sees a bare 500) and show ``message``, as the Token Storage
    answers it.
    """
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug if slug != "about:blank" else slug,
        "title": title,
        "status": status,
        "detail": detail,
        "success": False,
        "message": detail,
    }
    if field:
        body["field"] = field
    if instance:
        body["instance"] = instance
    if request_id:
        body["requestId"] = request_id
    if extra:
        for key, value in extra.items():
            body.setdefault(key, value)
    return body


def problem_from_error(
    err: ConnectorError, *, instance: str | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """Render a ``ConnectorError`` as a problem document."""
    return problem_body(
        err.status,
        err.title,
        err.detail,
        slug=err.slug,
        field=err.field,
        instance=instance,
        request_id=request_id,
        extra=err.extra,
    )
