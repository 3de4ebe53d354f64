"""What the two repository archives (Zenodo, any InvenioRDM) share.

Both keep one HTTP session for every user and build a client per call from the user's
token and the same transport settings, and both check at start that the service answers,
with bounded retries while it is down. The rest (routes, metadata, uploads) differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import requests

from common.backends.base import Json, LoginFailed
from common.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from common.identity import Identity
from common.retry import Policy
from common.useragent import USER_AGENT
from common.zenodo_client import ZenodoClient

C = TypeVar("C", bound=ZenodoClient)
_DOWN = (UpstreamUnavailable, UpstreamTimeout, UpstreamError)  # the login tries again on these


class RepositoryArchive(Generic[C]):
    """Per-user clients of one transport, and the login check."""

    client_class: type[C]
    address: str
    info: Json
    session: requests.Session
    sleep: Callable[[float], None]
    connect_timeout: float
    read_timeout: float
    login_attempts: int
    max_wait: float = 60.0  # the longest Retry-After a call waits out

    def _transport(
        self,
        address: str,
        info: Json | None,
        session: requests.Session,
        *,
        sleep: Callable[[float], None],
        connect_timeout: float,
        read_timeout: float,
        login_attempts: int,
    ) -> None:
        """The attributes every client is built from (called by the archive's ``__init__``)."""
        self.address = address.rstrip("/")
        self.info = info or {}
        self.session = session
        self.session.headers["User-Agent"] = USER_AGENT
        self.sleep = sleep
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.login_attempts = login_attempts

    def client(self, who: Identity | None) -> C:
        """A client for ``who`` (``None``: unauthenticated, for the login check)."""
        return self.client_class(
            self.address,
            who.require_token() if who is not None else None,
            session=self.session,
            sleep=self.sleep,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_wait=self.max_wait,
        )

    def _answering(self, usable: Callable[[int], bool], down: str) -> int:
        """The status of the service's probe once it is ``usable``; ``LoginFailed`` saying
        ``down`` when it stays unreachable or broken through the bounded retries."""
        policy = Policy(attempts=self.login_attempts, base=0.5, cap=8.0, exceptions=_DOWN)

        def probe() -> int:
            status = self.client(None).ping()
            if not usable(status):
                raise UpstreamError(f"status {status}")
            return status

        try:
            return policy.run(probe, sleep=self.sleep)
        except _DOWN as exc:
            raise LoginFailed(f"{down} ({exc.detail})") from exc
