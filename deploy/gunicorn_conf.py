"""Gunicorn settings of the combined image, from the environment (defaults for big streams).

Read by the Dockerfile's start command (``gunicorn --preload --config deploy/gunicorn_conf.py
'local_router:create_app()'``). ``--preload`` builds the app -- and so runs init (login,
Token Storage registration) -- in the master before the socket is bound: a pod is not
reachable, and not ready, before it is registered.

Defaults fit multi-GB transfers: no worker timeout (``0``: a long upload is never killed
as a "stuck" worker), threads for concurrent streams (each stream is I/O-bound), and a
graceful shutdown long enough to finish in-flight requests when a pod is rescheduled.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any


def _env_int(name: str, default: int, lowest: int = 0) -> int:
    """A whole-number setting; a wrong value stops start-up with a message naming it."""
    text = os.environ.get(name) or str(default)
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {text!r}") from None
    if value < lowest:
        raise SystemExit(f"{name} must be at least {lowest}, not {value}")
    return value


bind = f"{os.environ.get('HOST') or '0.0.0.0'}:{_env_int('PORT', 8080, 1)}"
worker_class = "gthread"
workers = _env_int("GUNICORN_WORKERS", 2, 1)
threads = _env_int("GUNICORN_THREADS", 8, 1)
timeout = _env_int("GUNICORN_TIMEOUT", 0)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 120)
keepalive = _env_int("GUNICORN_KEEPALIVE", 75)
# The connector writes its own access line per request (common/http.py); gunicorn's
# error log goes to stderr, where the platform collects it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# Behind a Kubernetes Service or a gateway the peer is a proxy on the cluster network.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# /metrics must count every worker's requests, not the one worker a scrape reaches:
# prometheus-client's multiprocess mode keeps each worker's values in this folder (it must
# be set before the app, and so prometheus-client, is imported by --preload).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="rds-metrics-")


def child_exit(server: Any, worker: Any) -> None:  # gunicorn calls hooks by these names
    """Drop a dead worker's live gauges (counters and histograms keep their totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
