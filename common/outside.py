"""Every call to an outside service, observed in one place: a DEBUG line and a metric.

Boundary: every ``requests`` session our clients use is an ``ObservedSession`` (made by
``session``), and the s3 backend's boto3 client reports through ``watch_boto``; both end
in ``observe``, which logs ``outside.call`` (service, method, host, path, status, duration,
bytes sent and received) at DEBUG and counts the call in ``/metrics``. Never the query
string, a header or a body: a token may sit in any of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from common import metrics

log = logging.getLogger("rds.outside")


def _size(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def observe(
    service: str,
    method: str,
    url: str,
    status: int | str,
    seconds: float,
    *,
    sent: int | None = None,
    received: int | None = None,
) -> None:
    """Log (DEBUG) and count one outside call; ``status`` is the answer's code or the
    failure's class name. Only host and path of ``url`` are logged."""
    metrics.count_call(service, status)
    if log.isEnabledFor(logging.DEBUG):
        parts = urlsplit(url)
        log.debug(
            "outside.call service=%s method=%s host=%s path=%s status=%s ms=%.1f sent=%s received=%s",
            service,
            method,
            parts.hostname or "-",
            parts.path or "/",
            status,
            seconds * 1000,
            "-" if sent is None else sent,
            "-" if received is None else received,
        )


class ObservedSession(requests.Session):
    """A ``requests.Session`` that observes each call it sends (``observe``). ``service``
    names the service; ``services`` names others by URL prefix (a shared session)."""

    def __init__(self, service: str, services: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.service = service
        self.services = dict(services or {})

    def _service_of(self, url: str) -> str:
        return next((name for p, name in self.services.items() if url.startswith(p)), self.service)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        started = time.perf_counter()
        url, method = request.url or "", request.method or "-"
        sent = _size(request.headers.get("Content-Length"))
        try:
            resp = super().send(request, **kwargs)
        except Exception as exc:
            observe(
                self._service_of(url),
                method,
                url,
                type(exc).__name__,
                time.perf_counter() - started,
                sent=sent,
            )
            raise
        observe(
            self._service_of(url),
            method,
            url,
            resp.status_code,
            time.perf_counter() - started,
            sent=sent,
            received=_size(resp.headers.get("Content-Length")),
        )
        return resp


def session(
    service: str, *, verify: bool = True, services: Mapping[str, str] | None = None
) -> requests.Session:
    """A session for ``service`` whose every call is observed."""
    observed = ObservedSession(service, services)
    observed.verify = verify
    return observed


def watch_boto(client: Any, service: str) -> None:
    """Observe each call a boto3 client makes (its own events: before and after a call)."""

    def before(context: dict[str, Any], **_: Any) -> None:
        context["rds_started"] = time.perf_counter()

    def after(http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        headers = getattr(http_response, "headers", {}) or {}
        observe(
            service,
            str(model.http.get("method", "-")),
            str(getattr(http_response, "url", "") or ""),
            int(getattr(http_response, "status_code", 0)),
            time.perf_counter() - context.get("rds_started", time.perf_counter()),
            received=_size(headers.get("Content-Length")),
        )

    events = client.meta.events
    events.register("before-call.s3", before)
    events.register("after-call.s3", after)
