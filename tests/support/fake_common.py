"""What the fake Zenodo and the fake InvenioRDM share, so that each piece lives once.

Both fakes answer errors, injected faults and rate-limit headers the same way, store an
upload the same way and find what a route acts on before the route runs; one copy keeps
the two fakes from drifting apart where the real services behave alike.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from flask import Response, jsonify, request

CHUNK = 1024 * 1024
MAX_FILES = 100

View = Callable[..., Response]


@dataclass
class Fault:
    status: int
    method: str | None
    path: str | None
    times: int
    headers: dict[str, str]
    body: dict[str, Any] | None


def json_response(body: Any, status: int = 200) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    return resp


def error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response:
    """The ``{"status", "message"}`` error body both services send, ``errors`` when given."""
    body: dict[str, Any] = {"status": status, "message": message}
    if errors:
        body["errors"] = errors
    return json_response(body, status)


def host_url() -> str:
    return request.host_url.rstrip("/")


def request_log(**extra: Any) -> dict[str, Any]:
    """A ``requests`` log entry: what both fakes' tests look at, plus a fake's own fields."""
    return {
        "method": request.method,
        "path": request.path,
        "user_agent": request.headers.get("User-Agent", ""),
        "content_length": request.headers.get("Content-Length"),
        "chunked": "chunked" in request.headers.get("Transfer-Encoding", ""),
        "authorization": request.headers.get("Authorization", ""),
        **extra,
    }


def declared_length() -> str | None:
    """The body's declared length; None for a chunked body or none declared.

    Both fakes refuse such a body before reading it: behind werkzeug it would read as empty.
    """
    if "chunked" in request.headers.get("Transfer-Encoding", ""):
        return None
    return request.headers.get("Content-Length")


def store_stream(stream: IO[bytes], target: Path, *, fsync: bool = False) -> tuple[int, str]:
    """Copy ``stream`` to ``target`` chunk by chunk; returns (size, MD5 hex).

    Chunked so that no body is held in memory: benchmarks send gigabytes.
    """
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(target, "wb") as out:
        while chunk := stream.read(CHUNK):
            md5.update(chunk)
            size += len(chunk)
            out.write(chunk)
        if fsync:
            out.flush()
            os.fsync(out.fileno())
    return size, md5.hexdigest()


def resolved(resolve: Callable[..., Any]) -> Callable[[View], View]:
    """Decorate a view so ``resolve`` finds what it acts on first.

    ``resolve`` gets the URL arguments it names and returns a refusal (a Response, the
    answer) or what it found (one value or a tuple); the view gets that, then the other URL
    arguments. Every route of the fakes starts so, in its service's order of 404s and 403s.
    """
    names = set(inspect.signature(resolve).parameters)

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def run(**args: Any) -> Response:
            found = resolve(**{k: v for k, v in args.items() if k in names})
            if isinstance(found, Response):
                return found
            rest = {k: v for k, v in args.items() if k not in names}
            return view(*(found if isinstance(found, tuple) else (found,)), **rest)

        return run

    return decorate


class FaultInjection:
    """``inject`` for tests and the matching of queued faults, as both fakes offer them.

    A subclass sets ``faults`` and ``lock`` in its ``__init__``.
    """

    faults: list[Fault]
    lock: threading.Lock | threading.RLock

    def inject(
        self,
        status: int,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (regex on the path)."""
        with self.lock:
            self.faults.append(Fault(status, method, path, times, dict(headers or {}), body))

    def _take(self, faults: list[Fault]) -> Fault | None:
        """The first of ``faults`` matching this request, used up once."""
        with self.lock:
            for fault in faults:
                if fault.method and fault.method != request.method:
                    continue
                if fault.path and not re.search(fault.path, request.path):
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    faults.remove(fault)
                return fault
        return None

    def _injected(self) -> Response | None:
        """The answer of an injected fault matching this request, if any."""
        fault = self._take(self.faults)
        if fault is None:
            return None
        body = fault.body or {"status": fault.status, "message": "injected"}
        resp = json_response(body, fault.status)
        resp.headers.update(fault.headers)
        return resp


def count_in_window(
    windows: dict[str, tuple[float, int]], key: str, start: float, limit: int
) -> tuple[float, int, bool]:
    """Count a request in ``key``'s window begun at ``start`` (another start begins anew).

    Returns (window start, requests counted, allowed); a refused request is not counted,
    so it has no effect. The caller holds the fake's lock.
    """
    begun, used = windows.get(key, (start, 0))
    if begun != start:
        begun, used = start, 0
    allowed = used < limit
    used += allowed
    windows[key] = (begun, used)
    return begun, used, allowed


def rate_headers(
    limit: int, remaining: int, reset: float, now: float, allowed: bool
) -> dict[str, str]:
    """The ``X-RateLimit-*`` headers both services send, ``Retry-After`` on a refusal."""
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(math.ceil(reset)),
    }
    if not allowed:
        headers["Retry-After"] = str(max(math.ceil(reset - now), 1))
    return headers
