"""The Port service: where a bare-form ``userId``'s token is looked up.

Its own module because it is the only part of identity that calls out: ``requests`` loads
with it, on the first lookup of a backend that needs a token, never in a function whose
backend needs none (``local``), whose cold start it would lengthen by ~30 ms
(docs/benchmarks.md, "Cold start").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

import requests

from common.errors import Unauthorized, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from common.identity import ABSENT
from common.retry import Policy
from common.upstream import Upstream

# the Port service's answers: 403/404 mean "no token stored" (the caller's 401), 429/504
# "try later" (503, with the Retry-After it sent)
PORT = Upstream(
    {
        Unauthorized: (
            "no token of {servicename} is stored for this user; authorize the service in RDS",
            "userId",
        ),
        UpstreamUnavailable: (
            "the Port service answered {status} to the token lookup; try again later",
            None,
        ),
    },
    "the Port service answered {status} to the token lookup",
    faults={
        UpstreamTimeout: "the Port service did not answer the token lookup in time",
        UpstreamUnavailable: "the Port service cannot be reached for the user's token",
    },
    means={
        403: Unauthorized,
        404: Unauthorized,
        429: UpstreamUnavailable,
        504: UpstreamUnavailable,
    },
)


LOOKUP_POLICY = Policy(
    attempts=3,
    base=0.2,
    cap=1.0,
    exceptions=(requests.ConnectionError, requests.Timeout),
    max_wait=2.0,  # a longer Retry-After is passed on to the caller instead (503)
)


def lookup_token(
    session: requests.Session,
    port_service_url: str,
    user: str,
    servicename: str,
    *,
    timeout: tuple[float, float] = (5.0, 30.0),
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Ask RDS's Port service for the user's token of this service (bare-form userId).

    An idempotent GET in the request path: ``LOOKUP_POLICY`` sends it again after a
    connection error or a 502/503/504, briefly (the caller is waiting)."""
    url = f"{port_service_url}/user/{quote(user, safe='')}/service/{quote(servicename, safe='')}"
    try:
        resp = LOOKUP_POLICY.run(lambda: session.get(url, timeout=timeout), sleep=sleep)
    except requests.RequestException as exc:
        raise PORT.transport(exc) from exc
    if resp.status_code != 200:
        raise PORT.error(resp.status_code, headers=resp.headers, servicename=servicename)
    try:
        body = resp.json()
    except ValueError:
        raise UpstreamError("the Port service answered the token lookup with no JSON") from None
    data = body.get("data", body) if isinstance(body, dict) else None
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or token in ABSENT:
        raise Unauthorized("the stored token of this user has no access token", field="userId")
    return token
