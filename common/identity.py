"""Who is calling: the ``userId`` field as RDS sends it, and the token behind it.

RDS puts identity in the body, not in a header: the session form
``port-<name>://<user>:<secret>`` (for OAuth2 services the secret is the access token) or
the bare form ``<user>``, for which the connector asks the Port service for the token.
Users are EFSS cloud ids (``alice@cloud.example.org``, possibly with ``:port``), so the
secret is split off at the LAST colon after ``://``. Tokens never reach a repr, a log
line or an error text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from common.errors import BadRequest, Unauthorized

ABSENT = (None, "", "None", "null")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
MAX_USER_ID = 4096


@dataclass(frozen=True)
class Identity:
    """The RDS user and, when the backend needs one, their secret (token or password)."""

    user: str
    token: str | None = field(default=None, repr=False)
    service: str | None = None

    def require_token(self) -> str:
        """The token, or a 401 that says none came with the request."""
        if not self.token:
            raise Unauthorized(
                "userId carries no token for this service and none could be looked up",
                field="userId",
            )
        return self.token


def _is_text(value: str) -> bool:
    """False for strings no UTF-8 can carry (lone surrogates, which JSON's \\udXXX allows)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_user_id(value: object, servicename: str, api_key: object = None) -> Identity:
    """Parse ``userId`` in session or bare form (``apiKey`` may carry the secret)."""
    if value in ABSENT:
        raise Unauthorized("userId is missing", field="userId")
    if not isinstance(value, str):
        raise Unauthorized("userId must be a string", field="userId")
    if len(value) > MAX_USER_ID or _CONTROL.search(value) or not _is_text(value):
        raise Unauthorized("userId is malformed", field="userId")
    service = None
    secret: str | None = None
    if "://" in value:
        prefix, rest = value.split("://", 1)
        if not _PREFIX.match(prefix):
            raise Unauthorized("userId has a malformed service prefix", field="userId")
        service = prefix if prefix.startswith("port-") else f"port-{prefix}"
        if service != servicename:
            raise Unauthorized(
                f"userId is meant for service {service}, this connector is {servicename}",
                field="userId",
            )
        user, sep, secret_part = rest.rpartition(":")
        if not sep:
            user, secret_part = rest, ""
        secret = None if secret_part in ABSENT else secret_part
    else:
        user = value
    if not user or user in ABSENT:
        raise Unauthorized("userId names no user", field="userId")
    if secret is None and isinstance(api_key, str) and api_key not in ABSENT:
        secret = api_key
    return Identity(user=user, token=secret, service=service)


def resolve_identity(
    user_id: object,
    api_key: object,
    *,
    servicename: str,
    needs_token: bool,
    lookup: Callable[[str], str | None],
) -> Identity:
    """The caller from ``userId`` (and ``apiKey``); when the backend needs a token and
    none came along, ``lookup(user)`` gives it (``None``: no way to look it up, a 401)."""
    who = parse_user_id(user_id, servicename, api_key)
    check_user_name(who.user)
    if who.token is not None or not needs_token:
        return who
    token = lookup(who.user)
    if token is None:
        who.require_token()  # raises: none came with the request and none can be looked up
    return Identity(who.user, token, who.service)


def check_user_name(user: str) -> str:
    """Refuse user names no backend may key on: every backend puts the name into a path,
    a URL or a key prefix, so '.', '..', a '/' or '\\' could reach another user's files."""
    if len(user) > 512:
        raise BadRequest("userId names a user longer than 512 characters", field="userId")
    if user in (".", "..") or "/" in user or "\\" in user:
        raise BadRequest("userId names a user that cannot be a folder name", field="userId")
    return user
