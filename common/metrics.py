"""Request counts and latency per function, in Prometheus text format (``GET /metrics``).

Existing RDS Helm charts probe ``/metrics``; one private registry keeps the answer to our
own series (no process collectors from other imports). Under gunicorn each worker is its
own process, so a scrape that reached one worker would see only its share: the image's
gunicorn settings set ``PROMETHEUS_MULTIPROC_DIR`` (before this module is imported), the
workers write their values there, and ``render`` sums them over all workers.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "rds_connector_requests",
    "Requests answered, by function, method and status",
    ("function", "method", "status"),
    registry=REGISTRY,
)
LATENCY = Histogram(
    "rds_connector_request_seconds",
    "Time to the answer's headers, by function",
    ("function",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
    registry=REGISTRY,
)


def observe(function: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request."""
    REQUESTS.labels(function, method, str(status)).inc()
    LATENCY.labels(function).observe(seconds)


def render() -> tuple[bytes, str]:
    """The exposition text (summed over all workers in multiprocess mode) and its type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
