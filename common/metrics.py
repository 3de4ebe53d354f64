"""The connector's figures in Prometheus text format (``GET /metrics``): requests and
time to the answer's headers per function; bytes received from and sent to callers per
backend; time to an answer's last byte and transfers in flight per function; calls to
outside services by service and status (counted by ``common/outside.py``).

Kept only where they are served: the router (the emulator, the container) calls
``enable`` as it builds its app, and serves ``/metrics``. A function deployed on its own
serves no ``/metrics`` (the platform counts its invocations and latency), so there
prometheus-client is never imported and every recording call here costs one ``None``
check: ~15 ms less of each cold start (docs/benchmarks.md, "Cold start").

Existing RDS Helm charts probe ``/metrics``; one private registry keeps the answer to our
own series (no process collectors from other imports). Under gunicorn each worker is its
own process, so a scrape that reached one worker would see only its share: the image's
gunicorn settings set ``PROMETHEUS_MULTIPROC_DIR`` (before this module is imported), the
workers write their values there, and ``render`` sums them over all workers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.streams import watch_answer

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class Series:
    """Our registry and its series."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    transfer_seconds: Histogram
    in_flight: Gauge
    bytes: Counter
    outside_calls: Counter


def _build() -> Series:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry(auto_describe=True)
    return Series(
        registry=registry,
        requests=Counter(
            "rds_connector_requests",
            "Requests answered, by function, method and status",
            ("function", "method", "status"),
            registry=registry,
        ),
        latency=Histogram(
            "rds_connector_request_seconds",
            "Time to the answer's headers, by function",
            ("function",),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
            registry=registry,
        ),
        transfer_seconds=Histogram(
            "rds_connector_transfer_seconds",
            "Time from a request's arrival to its answer's last byte, by function",
            ("function",),
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200),
            registry=registry,
        ),
        in_flight=Gauge(
            "rds_connector_transfers_in_flight",
            "Requests between arrival and their answer's last byte, by function",
            ("function",),
            multiprocess_mode="livesum",
            registry=registry,
        ),
        bytes=Counter(
            "rds_connector_bytes",
            "Body bytes received from callers and sent to them, by backend (local, zenodo, ...)",
            ("backend", "direction"),
            registry=registry,
        ),
        outside_calls=Counter(
            "rds_connector_outside_calls",
            "Calls to outside services, by service and status (a code, or the failure's class)",
            ("service", "status"),
            registry=registry,
        ),
    )


_series: Series | None = None
_lock = threading.Lock()


def enable() -> Series:
    """Start keeping the figures (idempotent): the router, as it starts serving them."""
    global _series
    with _lock:
        if _series is None:
            _series = _build()
        return _series


def count_call(service: str, status: int | str) -> None:
    """Count one call to an outside service."""
    if _series is not None:
        _series.outside_calls.labels(service, str(status)).inc()


class _CountingInput:
    """The WSGI input stream, counting the bytes read from it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.count = 0

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self.count += len(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int | None:
        if not hasattr(self._stream, "readinto"):
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        n: int | None = self._stream.readinto(buffer)
        self.count += n or 0
        return n

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class Transfer:
    """One request from arrival to its answer's last byte: in flight meanwhile, then its
    duration and the bytes it received and sent. Made before the body is read (it counts
    what is read from the WSGI input), finished with the answer. With metrics off it
    touches nothing: the input is not wrapped, the answer is passed on as it is."""

    def __init__(self, function: str, environ: dict[str, Any], backend: str = "-") -> None:
        self.function, self.backend = function, backend
        self.started = time.perf_counter()
        self.series = _series
        if self.series is None:
            return
        self.input = _CountingInput(environ.get("wsgi.input"))
        environ["wsgi.input"] = self.input
        self.series.in_flight.labels(function).inc()

    def finish(self, response: Any) -> Any:
        """Wrap the answer's body so its last byte (or its close, when broken off or never
        read, as for HEAD) ends the transfer."""
        if self.series is not None:
            watch_answer(response, lambda sent, _complete: self.done(sent))
        return response

    def done(self, sent: int) -> None:
        series = self.series
        assert series is not None  # only the watched answer calls, made with metrics on
        series.in_flight.labels(self.function).dec()
        series.transfer_seconds.labels(self.function).observe(time.perf_counter() - self.started)
        series.bytes.labels(self.backend, "received").inc(self.input.count)
        series.bytes.labels(self.backend, "sent").inc(sent)


def observe(function: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request."""
    if _series is not None:
        _series.requests.labels(function, method, str(status)).inc()
        _series.latency.labels(function).observe(seconds)


def render() -> tuple[bytes, str]:
    """The exposition text (summed over all workers in multiprocess mode) and its type."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    series = enable()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(series.registry), CONTENT_TYPE_LATEST
