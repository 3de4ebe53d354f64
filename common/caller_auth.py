"""Caller authentication: who may call this connector at all (off by default).

Boundary: decides from the request's ``Authorization`` header alone, before a function
runs; the user's identity (``userId``) is a separate matter handled by ``common.identity``.
RDS Layer 2 sends no credential of its own, so this is opt-in, one setting:

- ``CONNECTOR_CALLER_AUTH=none`` (default): everyone who can reach the port may call.
- ``bearer``: callers send ``Authorization: Bearer <CONNECTOR_CALLER_SECRET>`` (a shared
  secret, e.g. added by a mesh or ingress in Kubernetes); compared in constant time.
- ``google``: callers send a Google-signed ID token whose audience is one of
  ``CONNECTOR_CALLER_AUDIENCE`` (optionally from one of ``CONNECTOR_CALLER_EMAILS``),
  verified with google-auth -- the cloud deployment's service-to-service identity.

The probes (``/healthz``, ``/metrics``) are served by the router outside this check.
"""

from __future__ import annotations

import hmac
import logging

from flask import Request

from common.config import Settings
from common.errors import Unauthorized
from common.gcp_auth import CachingCertsTransport, InvalidIdToken, Transport, verify_id_token

log = logging.getLogger("rds.caller_auth")
REALM = "rds-connector"

_transport: Transport = CachingCertsTransport()


def use_transport(transport: Transport) -> None:
    """Replace the transport used to fetch Google's certificates (tests inject a fake)."""
    global _transport
    _transport = transport


def check_caller(settings: Settings, request: Request) -> None:
    """Return when the caller may call; raise a 401 ``Unauthorized`` otherwise."""
    mode = settings.caller_auth
    if mode == "none":
        return
    token = _bearer(request)
    if token is None:
        raise _unauthorized("send Authorization: Bearer <credential>", presented=False)
    if mode == "bearer":
        expected = (settings.caller_secret or "").encode()
        if not expected or not hmac.compare_digest(token.encode(), expected):
            raise _unauthorized("the bearer credential is not valid", presented=True)
        return
    try:
        claims = verify_id_token(
            token,
            list(settings.caller_audiences),
            _transport,
            emails=frozenset(settings.caller_emails),
        )
    except InvalidIdToken as exc:
        raise _unauthorized(str(exc), presented=True) from None
    log.debug("caller_auth.ok email=%s", claims.get("email", "-"))


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return value


def _unauthorized(detail: str, *, presented: bool) -> Unauthorized:
    challenge = f'Bearer realm="{REALM}"'
    if presented:
        challenge += ', error="invalid_token"'
    return Unauthorized(detail, field="Authorization", headers={"WWW-Authenticate": challenge})
