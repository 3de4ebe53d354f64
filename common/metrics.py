"""Request counts and latency per function, in Prometheus text format (``GET /metrics``).

Existing RDS Helm charts probe ``/metrics``; one private registry keeps the answer to our
own series (no process collectors from other imports).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
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
    """The exposition text and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
