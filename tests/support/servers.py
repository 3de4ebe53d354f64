"""Run WSGI apps and processes on loopback for tests; nothing here reaches beyond 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """A threaded werkzeug server for ``app`` on 127.0.0.1, optionally started late."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self, delay: float = 0.0) -> ServerThread:
        def run() -> None:
            if delay:
                time.sleep(delay)
            self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
            self._server.serve_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not delay:
            wait_for_port(self.port)
        return self

    def stop(self) -> None:
        deadline = time.monotonic() + 10
        while self._server is None and self._thread and self._thread.is_alive():
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def wait_for_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Block until something accepts connections on ``port`` (or fail with the reason)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def router_process(env: dict[str, str], *, wait: bool = True) -> Iterator[RouterProcess]:
    """``python local_router.py`` as a real process with ``env`` on top of ours."""
    port = int(env.get("PORT") or free_port())
    full = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "PYTHONUNBUFFERED": "1", **env}
    log_path = Path(full.get("CONNECTOR_DATA_DIR", "/tmp")) / f"router-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w+b") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "local_router.py")],
            cwd=ROOT,
            env=full,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        rp = RouterProcess(proc, port, log_path)
        try:
            if wait:
                wait_for_port(port, proc=proc)
            yield rp
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


class RouterProcess:
    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=60, **kw)
