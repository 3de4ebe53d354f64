"""ONE table from outside answers to our errors, used by every outside client.

Boundary: ``STATUS_ERRORS`` says which ``ConnectorError`` an outside HTTP status becomes,
``transport_errors()`` which one a transport failure of ``requests`` becomes (httpx's
``HTTPCORE_EXC_MAP``); nothing else in ``common`` decides that. What a client adds is its
words: an ``Upstream`` holds, per service, the detail texts (and the request field each
blames) and the few statuses that MEAN something else there (the Port service's 404 is
"no token stored", a 401 to the caller). A status a service has no words for is an
``UpstreamError`` (502) naming the status. Details are templates filled with ``what``
(a path, an action) and the client's own words; tokens never go into them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common.errors import (
    BadRequest,
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
from common.retry import retry_after

if TYPE_CHECKING:
    import requests

STATUS_ERRORS: dict[int, type[ConnectorError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: Conflict,
    413: PayloadTooLarge,
    423: Conflict,
    429: TooManyRequests,
    502: UpstreamUnavailable,
    503: UpstreamUnavailable,
    504: UpstreamTimeout,
    507: InsufficientStorage,
}


@functools.cache
def transport_errors() -> tuple[tuple[type[BaseException], type[ConnectorError]], ...]:
    """The transport table; first match wins (a Timeout is also a RequestException, a
    ConnectTimeout a ConnectionError). Built on first use: a transport failure of
    ``requests`` can only happen once a client imported it, and a function whose backend
    never calls out (``local``) should not pay ~30 ms of its cold start for the import."""
    import requests
    from requests.exceptions import ChunkedEncodingError

    return (
        (requests.Timeout, UpstreamTimeout),
        (requests.ConnectionError, UpstreamUnavailable),
        (ChunkedEncodingError, UpstreamUnavailable),  # the answer broke off after its head
        (requests.RequestException, UpstreamError),
    )


ASKED = "<asked>"  # a Say's field: the field the caller names (``error(..., field=)``)
_WAIT_HINTED = (TooManyRequests, UpstreamUnavailable, UpstreamTimeout)

Say = tuple[str, str | None]  # detail template, the request field it blames


@dataclass(frozen=True)
class Upstream:
    """One outside service's words for the shared tables."""

    answers: Mapping[int | type[ConnectorError], Say]  # by status first, then by class
    otherwise: str  # the UpstreamError of a status with no words
    faults: Mapping[type[ConnectorError], str] = field(default_factory=dict)  # transport
    means: Mapping[int, type[ConnectorError]] = field(default_factory=dict)  # own meanings

    def error(
        self,
        status: int,
        *,
        what: str = "",
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        **words: Any,
    ) -> ConnectorError:
        """The error for an unsuccessful ``status``; ``Retry-After`` rides along when valid."""
        cls = self.means.get(status) or STATUS_ERRORS.get(status, UpstreamError)
        say = self.answers.get(status) or self.answers.get(cls)
        if say is None:
            cls, say = UpstreamError, (self.otherwise, None)
        detail = say[0].format(what=what, status=status, **words)
        blamed = field if say[1] == ASKED else say[1]
        hint = (headers or {}).get("Retry-After")
        passed = {"Retry-After": hint} if hint and issubclass(cls, _WAIT_HINTED) else None
        if passed and retry_after(hint, 0.0) is None:
            passed = None
        return cls(detail, field=blamed, headers=passed, extra=extra)

    def check(self, resp: requests.Response, **kwargs: Any) -> requests.Response:
        """``resp`` if below 300, else raise its ``error``."""
        if resp.status_code < 300:
            return resp
        raise self.error(resp.status_code, headers=resp.headers, **kwargs)

    def transport(self, exc: BaseException, **words: Any) -> ConnectorError:
        """The error for a transport failure (raise it ``from exc``)."""
        cls = next((c for kind, c in transport_errors() if isinstance(exc, kind)), UpstreamError)
        text = self.faults.get(cls) or self.faults.get(UpstreamUnavailable) or self.otherwise
        return cls(text.format(status="-", what="", **words))
