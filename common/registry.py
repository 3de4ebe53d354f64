"""Registration of this connector with RDS's Token Storage, done by init before serving.

The payload is what RDS's own ``RDS.Util.getServiceObject`` accepts and keeps unchanged
(a contract test proves it). The Token Storage may start after us: connection errors and
5xx answers are retried with capped exponential back-off until a deadline (``common.retry``). An existing
entry is never silently kept: when ``GET /service/{name}`` differs from what we would
register, the entry is deleted and posted again, so a changed secret or URL takes effect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import requests

from common import outside
from common.config import Settings
from common.errors import ConfigError
from common.retry import Policy

log = logging.getLogger("rds.registry")
Json = dict[str, Any]

OVERRIDES = {
    "displayName": "CONNECTOR_DISPLAYNAME",
    "icon": "CONNECTOR_ICON",
    "infoUrl": "CONNECTOR_INFO_URL",
    "helpUrl": "CONNECTOR_HELP_URL",
    "projectLinkTemplate": "CONNECTOR_PROJECT_LINK_TEMPLATE",
}
OAUTH_FIELDS = ("authorize_url", "refresh_url", "client_id", "client_secret")


class RegistrationFailed(Exception):
    """The Token Storage refused us, or stayed unreachable until the deadline."""


def _rds_url(value: str) -> str:
    """RDS's BaseService quote_plus-es an unquoted info/help URL; send it as it will keep it."""
    if value and unquote_plus(value) == value:
        return quote_plus(value)
    return value


def build_payload(settings: Settings, backends: list[Any]) -> Json:
    """The flat service payload for ``POST /service`` from the configured backends."""
    implements = [i for i in ("fileStorage", "metadata") if i in settings.interfaces]
    info: Json = {}
    auth: Json = {}
    for backend in reversed(backends):  # the metadata backend's facts win
        info.update(backend.service_info())
        fields = backend.registration_fields()
        if "client_id" in fields and "client_id" in auth and fields != auth:
            raise ConfigError("two OAuth backends in one deployment: give each its own servicename")
        if "client_id" in fields or not auth:
            auth = fields
    for key, name in OVERRIDES.items():
        if settings.get(name):
            info[key] = settings.get(name)
    description = dict(info.get("description") or {"en": ""})
    for lang in ("en", "de"):
        text = settings.get(f"CONNECTOR_DESCRIPTION_{lang.upper()}")
        if text:
            description[lang] = text
    payload: Json = {
        "servicename": settings.servicename,
        "implements": implements,
        "fileTransferMode": settings.file_transfer_mode,
        "fileTransferArchive": settings.file_transfer_archive,
        "description": description,
        "icon": info.get("icon") or None,
        "infoUrl": _rds_url(info.get("infoUrl") or ""),
        "helpUrl": _rds_url(info.get("helpUrl") or ""),
        "displayName": info.get("displayName") or "",
        "metadataProfile": settings.get("CONNECTOR_METADATA_PROFILE"),
        "projectLinkTemplate": info.get("projectLinkTemplate") or "",
    }
    payload.update(auth)
    return payload


def _unwrap(body: Any) -> Json:
    if isinstance(body, dict) and isinstance(body.get("data"), dict) and "type" in body:
        return body["data"]
    return body if isinstance(body, dict) else {}


def differs(stored: Json, payload: Json) -> list[str]:
    """Names of the payload's fields the stored entry lacks or holds otherwise."""
    return [k for k, v in payload.items() if k not in stored or stored[k] != v]


class TokenStorage:
    """A small client of the Token Storage's ``/service`` routes."""

    def __init__(self, base_url: str, session: requests.Session, timeout: tuple[float, float]):
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.timeout = timeout

    def post(self, payload: Json) -> requests.Response:
        return self.session.post(f"{self.base_url}/service", json=payload, timeout=self.timeout)

    def get(self, name: str) -> requests.Response:
        return self.session.get(f"{self.base_url}/service/{quote(name)}", timeout=self.timeout)

    def delete(self, name: str) -> requests.Response:
        return self.session.delete(f"{self.base_url}/service/{quote(name)}", timeout=self.timeout)


class _Retry(Exception):
    """The Token Storage answered 5xx: sent again like a connection error."""


_TRANSIENT = (requests.ConnectionError, requests.Timeout, _Retry)


def _checked(resp: requests.Response) -> requests.Response:
    if resp.status_code >= 500:
        raise _Retry(f"Token Storage answered {resp.status_code}")
    return resp


def _register_once(ts: TokenStorage, payload: Json) -> str:
    resp = _checked(ts.post(payload))
    body = _json(resp)
    if resp.status_code == 200 and body.get("success") is True:
        return "registered"
    message = str(body.get("message") or body.get("error") or "")
    if "ServiceExistsAlready" not in message and resp.status_code != 409:
        raise RegistrationFailed(
            f"Token Storage refused the registration of {payload['servicename']}: "
            f"{resp.status_code} {message or 'no message'}"
        )
    current = _checked(ts.get(payload["servicename"]))
    changed = differs(_unwrap(_json(current)), payload) if current.status_code == 200 else ["?"]
    if not changed:
        return "unchanged"
    log.info("registry.replace service=%s fields=%s", payload["servicename"], ",".join(changed))
    gone = _checked(ts.delete(payload["servicename"]))
    if gone.status_code not in (200, 204, 404):
        raise RegistrationFailed(
            f"Token Storage refused to delete the old entry: {gone.status_code}"
        )
    again = _checked(ts.post(payload))
    if again.status_code == 200 and _json(again).get("success") is True:
        return "replaced"
    raise RegistrationFailed(f"Token Storage refused the new entry: {again.status_code}")


def _json(resp: requests.Response) -> Json:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def register(
    settings: Settings,
    payload: Json,
    *,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Register ``payload``; returns registered, unchanged, replaced or skipped."""
    if not settings.token_storage_url:
        log.info("registry.skipped reason=CENTRAL_SERVICE_TOKEN_STORAGE is not set")
        return "skipped"
    ts = TokenStorage(
        settings.token_storage_url, session or outside.session("token-storage"), (5.0, 30.0)
    )
    policy = Policy(
        attempts=None,
        base=0.25,
        cap=settings.registration_max_delay,
        deadline=settings.registration_deadline,
        exceptions=_TRANSIENT,
    )
    attempts = 0

    def once() -> str:
        nonlocal attempts
        attempts += 1
        return _register_once(ts, payload)

    try:
        outcome = policy.run(once, sleep=sleep, clock=clock, log=_log_retry)
    except _TRANSIENT as exc:
        raise RegistrationFailed(
            f"Token Storage at {settings.token_storage_url} was not reachable within "
            f"REGISTRATION_DEADLINE={settings.registration_deadline:g}s "
            f"({attempts} attempts, last: {_reason(exc)})"
        ) from exc
    log.info(
        "registry.done service=%s outcome=%s attempts=%d",
        payload["servicename"],
        outcome,
        attempts,
    )
    return outcome


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, _Retry) else exc.__class__.__name__


def _log_retry(reason: str, attempt: int, wait: float) -> None:
    log.warning("registry.retry attempt=%d reason=%s wait=%.2fs", attempt, reason, wait)
