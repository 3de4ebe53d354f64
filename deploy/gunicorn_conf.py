"""Gunicorn settings of the combined image, from the environment (defaults for big streams).

Read by the Dockerfile's start command (``gunicorn --preload --config deploy/gunicorn_conf.py
'local_router:create_app()'``). ``--preload`` builds the app -- and so runs init (login,
Token Storage registration) -- in the master before the socket is bound: a pod is not
reachable, and not ready, before it is registered.

Defaults fit multi-GB transfers: no worker timeout (``0``: a long upload is never killed
as a "stuck" worker), many concurrent streams per worker (each is I/O-bound), and a
graceful shutdown long enough to finish in-flight requests when a pod is rescheduled.

The worker is gevent's (``GUNICORN_WORKER_CLASS``, see docs/deploy.md "Server model"): one
greenlet per connection, up to ``GUNICORN_WORKER_CONNECTIONS`` per worker, so a client that
stalls costs a few KiB until ``CONNECTOR_BODY_IDLE_TIMEOUT`` (body), the keep-alive
timeout (headers) or ``CONNECTOR_SEND_IDLE_TIMEOUT`` (a client that stops reading) ends
it, and honest transfers and ``/healthz`` go on beside it. gevent must patch the standard library before anything else imports it: with ``--preload`` the
app (requests, boto3, their locks and SSL contexts) is imported in the master right after
this file is read, long before the worker would patch; so this file patches first.
"""

from __future__ import annotations

import os

WORKER_CLASSES = ("gevent", "gthread")
_worker_name = os.environ.get("GUNICORN_WORKER_CLASS") or "gevent"
if _worker_name not in WORKER_CLASSES:
    raise SystemExit(
        f"GUNICORN_WORKER_CLASS must be one of {', '.join(WORKER_CLASSES)}, not {_worker_name!r}"
    )
if _worker_name == "gevent":
    from gevent import monkey

    monkey.patch_all()

import queue  # noqa: E402 - after the patch, as everything else
import signal  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

worker_class: Any = _worker_name
if _worker_name == "gevent":
    import gevent
    from gunicorn.workers.ggevent import GeventWorker

    class StoppingGeventWorker(GeventWorker):
        """gunicorn's gevent worker, closing idle kept-alive connections when it stops.

        The stock worker waits for the next request on a kept-alive connection for up to
        ``keepalive`` seconds and counts that wait as work on shutdown, so one pooled
        client connection holds a stopping pod for 75 s. Here a stop ends those waits at
        once (gthread closes them after 2 s); requests being served still get the
        graceful timeout.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.waiting: dict[Any, gevent.Timeout] = {}

        def timeout_ctx(self) -> Any:
            return _WaitForRequest(self, self.cfg.keepalive if self.alive else 0.01)

        def run(self) -> None:
            gevent.spawn(self._close_waiting_on_stop)
            super().run()

        def _close_waiting_on_stop(self) -> None:
            while self.alive:
                gevent.sleep(0.2)
            for greenlet, timer in list(self.waiting.items()):
                # as if the keep-alive time were up: the connection is closed quietly
                greenlet.kill(timer, block=False)

    class _WaitForRequest:
        """``gevent.Timeout(seconds, False)`` that its worker can end early."""

        def __init__(self, worker: StoppingGeventWorker, seconds: float) -> None:
            self.worker, self.timer = worker, gevent.Timeout(seconds, False)

        def __enter__(self) -> None:
            self.worker.waiting[gevent.getcurrent()] = self.timer
            self.timer.__enter__()

        def __exit__(self, *exc: Any) -> bool | None:
            self.worker.waiting.pop(gevent.getcurrent(), None)
            return self.timer.__exit__(*exc)

    worker_class = StoppingGeventWorker


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
workers = _env_int("GUNICORN_WORKERS", 2, 1)
threads = _env_int("GUNICORN_THREADS", 8, 1)  # gthread only
worker_connections = _env_int("GUNICORN_WORKER_CONNECTIONS", 1000, 1)
timeout = _env_int("GUNICORN_TIMEOUT", 0)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 120)
keepalive = _env_int("GUNICORN_KEEPALIVE", 75)
# gunicorn's control socket (``gunicornc``) runs an asyncio loop on a thread in the master;
# in a master patched by gevent that thread is a greenlet and can hold up the shutdown.
# Nothing here uses it (Kubernetes sends signals), and it would be one more file to write.
control_socket_disable = True
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


# A stop signal the master sends a worker between its fork and the worker's own signal
# handlers reaches the master's handlers the child inherited, which only put it in the
# child's copy of the master's queue: the worker never stops, and the pod's stop waits the
# whole graceful timeout (seen when a stop came while a worker was booting).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def post_fork(server: Any, worker: Any) -> None:
    """Keep the child's copy of the master (its queue catches signals until the worker's
    handlers are in place)."""
    worker.rds_master_copy = server


def post_worker_init(worker: Any) -> None:
    """Deliver again, now to the worker's own handlers, a stop signal that arrived early."""
    master = getattr(worker, "rds_master_copy", None)
    early: set[int] = set()
    while master is not None:
        try:
            early.add(master.SIG_QUEUE.get_nowait())
        except queue.Empty:
            break
    for sig in STOP_SIGNALS:
        if sig in early:
            os.kill(os.getpid(), sig)
