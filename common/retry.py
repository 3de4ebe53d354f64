"""One retry and rate policy for every outside client: when to send a call again, how long
to wait first, and how to stay under a service's published rate limit.

Boundary: this module sends nothing and knows no URL or error class. A client states its
numbers once as a ``Policy`` and passes one attempt as a callable to ``Policy.run``; the
sleep and the clock are arguments (chalice's ``_call_client_method_with_retries``), so
tests drive every wait without waiting. The rules, the same for every client:

- a failure in ``Policy.exceptions`` or an answer in ``Policy.statuses`` is sent again only
  when the call is idempotent and its body can be sent again (``replayable``);
- a 429 is waited out for every replayable call (the service did not process it), for as
  long as ``Retry-After`` says up to ``max_wait``; a longer wait keeps the 429 answer;
- the back-off doubles from ``base`` up to ``cap``; a retried status's ``Retry-After``
  (within ``max_wait``) replaces it; ``status_waits`` fixes the wait per status;
- with a ``deadline`` no wait goes past it, and none is left after it.

``RateBudget`` paces calls BEFORE a limit is hit, from the ``X-RateLimit-*`` headers of
earlier answers, per service and token (the token only as a hash).

A small own module rather than tenacity: tenacity reads ``time.monotonic`` itself for its
stop-after-delay (the registration deadline is tested on a fake clock), its waits cannot
see the answer's ``Retry-After`` without wrapping every answer in an exception, and it
would be one more dependency in every cold start for a loop of thirty lines.
"""

from __future__ import annotations

import email.utils
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

R = TypeVar("R")
Sleep = Callable[[float], None]
Clock = Callable[[], float]
Log = Callable[[str, int, float], None]  # reason, attempt, wait
RATE_LIMITED = 429
_EPOCH = 1_000_000_000  # an X-RateLimit-Reset above this is a Unix time, below it seconds
_MAX_HEADER = 40  # longer than an HTTP date: not a Retry-After


def retry_after(value: str | None, now: float, *, cap: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date (``now``
    is the wall clock); ``None`` when absent, unreadable or longer than ``cap``."""
    if not value or len(value) > _MAX_HEADER:
        return None
    value = value.strip()
    if value.isdigit():
        wait = float(value)
    else:
        try:
            wait = max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return None if cap is not None and wait > cap else wait


def token_key(service: str, token: str | None) -> str:
    """The budget key of one service and one token; the token itself is never kept."""
    digest = hashlib.sha256((token or "").encode("utf-8")).hexdigest()[:16]
    return f"{service}:{digest}"


class RateBudget:
    """What is left of each (service, token)'s rate limit, from ``X-RateLimit-Limit``,
    ``-Remaining`` and ``-Reset`` answer headers; thread-safe, shared by a process.

    ``pause`` counts a call against the budget and says how long to wait before it: zero
    while more than ``reserve`` calls remain, else until ``Reset`` (at most ``max_wait``).
    """

    def __init__(self, *, reserve: int = 1, max_wait: float = 60.0) -> None:
        self.reserve = reserve
        self.max_wait = max_wait
        self._left: dict[str, tuple[int, float]] = {}  # key -> (remaining, reset as Unix time)
        self._lock = threading.Lock()

    def note(self, key: str, headers: Mapping[str, str], now: float) -> None:
        """Learn the budget from an answer's headers (answers without them change nothing)."""
        remaining = _number(headers.get("X-RateLimit-Remaining"))
        reset = _number(headers.get("X-RateLimit-Reset"))
        if remaining is None or reset is None:
            return
        limit = _number(headers.get("X-RateLimit-Limit"))
        if limit is not None:
            remaining = min(remaining, limit)
        when = reset if reset > _EPOCH else now + reset
        with self._lock:
            self._left[key] = (int(remaining), when)

    def pause(self, key: str, now: float) -> float:
        """Seconds to wait before the next call of ``key``, which this counts."""
        with self._lock:
            known = self._left.get(key)
            if known is None or now >= known[1]:
                self._left.pop(key, None)
                return 0.0
            remaining, reset = known
            self._left[key] = (max(remaining - 1, 0), reset)
            return 0.0 if remaining > self.reserve else min(reset - now, self.max_wait)


def _now(replayable: bool | Callable[[], bool]) -> bool:
    return replayable if isinstance(replayable, bool) else replayable()


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Policy:
    """How one client sends a call again; see the module docstring for the rules."""

    attempts: int | None = 3  # in all, the first included; None: until the deadline
    base: float = 0.25  # the first back-off, doubled per attempt
    cap: float = 4.0  # the longest back-off
    deadline: float | None = None  # seconds from the first attempt
    statuses: frozenset[int] = frozenset({502, 503, 504})
    exceptions: tuple[type[BaseException], ...] = ()
    status_waits: Mapping[int, float] = field(default_factory=dict)
    max_wait: float = 30.0  # the longest Retry-After waited out
    rate_wait: float | None = None  # a 429 without Retry-After: this, or else the back-off
    budget: RateBudget | None = None

    def delay(self, attempt: int) -> float:
        """The back-off after failed attempt ``attempt`` (1-based)."""
        return min(self.base * 2 ** (attempt - 1), self.cap)

    def wait_for(
        self, answer: Any, attempt: int, retry: bool, replayable: bool, now: float
    ) -> float | None:
        """Seconds to wait before sending again after ``answer``, or None: keep it."""
        status = answer.status_code
        asked = retry_after(answer.headers.get("Retry-After"), now)
        if status == RATE_LIMITED and replayable:
            if asked is None:
                return self.delay(attempt) if self.rate_wait is None else self.rate_wait
            return asked if asked <= self.max_wait else None
        if status in self.statuses and retry:
            if asked is not None and asked <= self.max_wait:
                return asked
            return self.status_waits.get(status, self.delay(attempt))
        return None

    def run(
        self,
        send: Callable[[], R],
        *,
        sleep: Sleep = time.sleep,
        clock: Clock = time.time,
        idempotent: bool = True,
        replayable: bool | Callable[[], bool] = True,
        log: Log | None = None,
        key: str | None = None,
    ) -> R:
        """Call ``send`` until it succeeds or the policy gives up; return the answer kept
        (any status) or raise the last exception. ``key`` names the rate budget to use.
        ``replayable`` may be a callable asked after each attempt (a body that can be sent
        again only while a bounded part of it has been read)."""
        start = clock()
        attempt = 0
        while True:
            attempt += 1
            self._pace(key, sleep, clock, log, attempt)
            try:
                answer = send()
            except self.exceptions as exc:
                again = _now(replayable)
                retry = idempotent and again
                wait = self._next(self.delay(attempt) if retry else None, attempt, start, clock)
                if wait is None:
                    raise
                reason = exc.__class__.__name__
            else:
                headers = getattr(answer, "headers", None)
                if self.budget is not None and key is not None and headers is not None:
                    self.budget.note(key, headers, clock())
                if not hasattr(answer, "status_code"):
                    return answer
                again = _now(replayable)
                retry = idempotent and again
                found = self.wait_for(answer, attempt, retry, again, clock())
                wait = self._next(found, attempt, start, clock)
                if wait is None:
                    return answer
                cast(Any, answer).close()  # an HTTP answer (it has status_code)
                kind = "rate-limited" if answer.status_code == RATE_LIMITED else "status"
                reason = f"{kind}-{answer.status_code}"
            if log is not None:
                log(reason, attempt, wait)
            sleep(wait)

    def _next(self, wait: float | None, attempt: int, start: float, clock: Clock) -> float | None:
        """``wait`` (never past the deadline) if one more attempt is allowed, else None."""
        if wait is None or (self.attempts is not None and attempt >= self.attempts):
            return None
        if self.deadline is None:
            return wait
        left = start + self.deadline - clock()
        return min(wait, left) if left > 0 else None

    def _pace(
        self, key: str | None, sleep: Sleep, clock: Clock, log: Log | None, attempt: int
    ) -> None:
        """Wait as the rate budget asks before an attempt (no budget or key: never)."""
        if self.budget is None or key is None:
            return
        wait = self.budget.pause(key, clock())
        if wait > 0:
            if log is not None:
                log("rate-budget", attempt, wait)
            sleep(wait)
