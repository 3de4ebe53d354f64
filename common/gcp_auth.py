"""Google identity for service-to-service calls: ID tokens out, ID token checks in.

Boundary: this module only talks to google-auth (and, through it, to the metadata server
or Google's token and certificate endpoints). It knows nothing of Flask or of RDS.

Out: on Google Cloud (Cloud Functions, Cloud Run, GKE with workload identity, or a
service account file in ``GOOGLE_APPLICATION_CREDENTIALS``) a call to another connector or
function must carry an ID token minted for the target's audience (its URL), because those
targets run with ``--no-allow-unauthenticated``. Elsewhere (Kubernetes on-premises, a
laptop) there are no Google credentials, which is normal: the first
``DefaultCredentialsError`` is remembered, and from then on calls go out without the header
at no cost.

In: ``verify_id_token`` checks a Google-signed ID token (signature, expiry, issuer,
audience) for caller authentication; Google's signing certificates are cached for the
``max-age`` their answer allows, so a request does not cost a fetch.

google-auth (and cryptography, which it loads: ~50 ms and ~13 MiB per process) is imported
inside the functions that need it, never at import time: a function with caller auth off
that makes no outbound call on Google Cloud never loads it (``tests/unit/test_cold_imports.py``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from common.errors import UpstreamUnavailable

if TYPE_CHECKING:
    import requests

log = logging.getLogger("rds.gcp_auth")

# Renew a cached ID token this many seconds before it expires (they live one hour).
RENEW_MARGIN = 300.0
CERTS_DEFAULT_MAX_AGE = 300.0
GOOGLE_HINTS = ("K_SERVICE", "GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST")
_MAX_AGE = re.compile(r"max-age=(\d+)")

Transport = Callable[..., Any]
Fetch = Callable[[Transport, str], str]


def default_transport() -> Transport:
    """google-auth's own transport over ``requests`` (with a timeout on every call)."""
    import google.auth.transport.requests
    import requests

    return google.auth.transport.requests.Request(session=requests.Session())


def fetch_id_token(transport: Transport, audience: str) -> str:
    """``google.oauth2.id_token.fetch_id_token``, imported on first use."""
    from google.oauth2 import id_token

    token: str = id_token.fetch_id_token(transport, audience)
    return token


class IdTokenSource:
    """Mints (and caches) ID tokens per audience; remembers when there are no credentials.

    ``transport`` is google-auth's request callable (a fake one in tests); ``fetch`` is
    ``google.oauth2.id_token.fetch_id_token``; ``clock`` gives seconds since the epoch.
    """

    def __init__(
        self,
        transport: Transport | None = None,
        *,
        fetch: Fetch = fetch_id_token,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._transport = transport
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        # None = not asked yet; False at once where nothing hints at Google Cloud, so a
        # Kubernetes pod elsewhere never waits for metadata-server pings (seconds each).
        self.has_credentials: bool | None = (
            None
            if may_have_google_credentials(os.environ if environ is None else environ)
            else False
        )

    def token(self, audience: str) -> str | None:
        """An ID token for ``audience``, or ``None`` when this process has no credentials."""
        if self.has_credentials is False:
            return None
        with self._lock:
            cached = self._tokens.get(audience)
            if cached and cached[1] - RENEW_MARGIN > self._clock():
                return cached[0]
            from google.auth import exceptions as gexc

            if self._transport is None:
                self._transport = default_transport()
            try:
                token = self._fetch(self._transport, audience)
            except gexc.DefaultCredentialsError:
                # Not on Google Cloud: normal, and the answer will not change for this process.
                log.info("gcp_auth.no_credentials outbound calls carry no ID token")
                self.has_credentials = False
                return None
            except gexc.GoogleAuthError as exc:
                # On Google Cloud but the metadata server or token endpoint failed: the call
                # would be refused by the target, so say so instead of sending it bare.
                raise UpstreamUnavailable(
                    f"could not obtain an ID token for {audience} ({exc.__class__.__name__})"
                ) from exc
            self.has_credentials = True
            self._tokens[audience] = (token, _expiry(token, self._clock))
            return token

    def headers(self, audience: str) -> dict[str, str]:
        """``{"Authorization": "Bearer <id token>"}`` on Google Cloud, ``{}`` elsewhere."""
        token = self.token(audience)
        return {"Authorization": f"Bearer {token}"} if token else {}


def may_have_google_credentials(environ: Mapping[str, str]) -> bool:
    """Whether asking google-auth is worth it: Cloud Functions/Cloud Run set ``K_SERVICE``;
    a key file or an explicit metadata host (set ``GCE_METADATA_HOST`` on GKE) count too."""
    return any(environ.get(name) for name in GOOGLE_HINTS)


def _expiry(token: str, clock: Callable[[], float]) -> float:
    """The token's ``exp`` claim (unverified: we minted it); one hour from now if absent."""
    from google.auth import jwt

    try:
        claims = jwt.decode(token, verify=False)
        return float(claims["exp"])
    except (ValueError, KeyError, TypeError):
        return clock() + 3600.0


_default_source: IdTokenSource | None = None
_default_lock = threading.Lock()


def default_source() -> IdTokenSource:
    """The process-wide token source (one cache, one 'no credentials' answer)."""
    global _default_source
    with _default_lock:
        if _default_source is None:
            _default_source = IdTokenSource()
        return _default_source


def outbound_auth_headers(audience: str, source: IdTokenSource | None = None) -> dict[str, str]:
    """Headers for a call to the service at ``audience`` (its URL): an ID token or nothing."""
    return (source or default_source()).headers(audience)


class IdTokenAuth:
    """``requests`` auth that adds the ID token for a fixed audience, when there is one
    (any callable taking and returning the prepared request is one; no base class, so this
    module does not import ``requests`` for a caller-auth check).

    Usage: ``session.get(url, auth=IdTokenAuth("https://region-project.cloudfunctions.net/f"))``.
    """

    def __init__(self, audience: str, source: IdTokenSource | None = None) -> None:
        self.audience = audience
        self.source = source

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers.update(outbound_auth_headers(self.audience, self.source))
        return r


class CachingCertsTransport:
    """A google-auth transport that caches GET answers (Google's signing certificates).

    ``verify_oauth2_token`` fetches the certificates on every call; caching them for the
    ``Cache-Control: max-age`` Google sends keeps token checks free of network round trips.
    """

    def __init__(
        self, inner: Transport | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._inner = inner
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[Any, float]] = {}

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> Any:
        if method != "GET":
            return self._transport(url, method=method, **kwargs)
        with self._lock:
            hit = self._cache.get(url)
            if hit and hit[1] > self._clock():
                return hit[0]
        response = self._transport(url, method=method, **kwargs)
        if response.status == 200:
            with self._lock:
                self._cache[url] = (response, self._clock() + _max_age(response.headers))
        return response

    def _transport(self, url: str, **kwargs: Any) -> Any:
        if self._inner is None:
            self._inner = default_transport()
        return self._inner(url, **kwargs)


def _max_age(headers: Mapping[str, str]) -> float:
    lowered = {k.lower(): v for k, v in dict(headers).items()}
    m = _MAX_AGE.search(lowered.get("cache-control", ""))
    return float(m.group(1)) if m else CERTS_DEFAULT_MAX_AGE


class InvalidIdToken(Exception):
    """The presented token is not a valid Google ID token for us (reason in the message)."""


def verify_id_token(
    token: str,
    audiences: list[str],
    transport: Transport,
    *,
    emails: frozenset[str] = frozenset(),
) -> Mapping[str, Any]:
    """The token's claims when Google signed it for one of ``audiences`` (and, when
    ``emails`` is given, for one of those accounts with a verified email)."""
    from google.auth import exceptions as gexc
    from google.oauth2 import id_token

    try:
        claims = id_token.verify_oauth2_token(token, transport, audience=audiences)
    except gexc.TransportError as exc:
        raise UpstreamUnavailable("could not fetch Google's token signing certificates") from exc
    except (ValueError, gexc.GoogleAuthError) as exc:
        # google-auth's messages quote claims (never the token itself); keep only the class.
        raise InvalidIdToken(f"the ID token is not valid ({_reason(exc)})") from None
    if emails:
        email = claims.get("email")
        if not claims.get("email_verified") or email not in emails:
            raise InvalidIdToken("the ID token's account is not allowed to call this connector")
    return claims


def _reason(exc: Exception) -> str:
    text = str(exc).lower()
    for word in ("expired", "audience", "issuer", "signature", "too early", "segments"):
        if word in text:
            return word
    return exc.__class__.__name__


__all__ = [
    "CachingCertsTransport",
    "IdTokenAuth",
    "IdTokenSource",
    "InvalidIdToken",
    "default_source",
    "outbound_auth_headers",
    "verify_id_token",
]
