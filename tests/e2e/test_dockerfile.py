"""The combined image, checked without a container engine.

The start command is read FROM the Dockerfile (its exec-form ``CMD``, ``ENV`` and ``WORKDIR``)
and run for real on loopback, so the image cannot drift from what the test proves; hadolint
lints the file with every rule on.
"""

from __future__ import annotations

import subprocess
import threading

import requests

from tests.conftest import uid
from tests.support.image import DOCKERFILE, VENV_BIN, image_spec, instructions, run_env
from tests.support.servers import ROOT, ServerThread, free_port, wait_for_port
from tests.support.token_storage import TokenStorageDouble


def test_dockerfile_is_exec_form_non_root_and_exposes_8080() -> None:
    cmd, env, workdir = image_spec()
    assert isinstance(cmd, list) and cmd[0] == "gunicorn"
    assert "--preload" in cmd  # init runs before the socket is bound
    keywords = dict(instructions(DOCKERFILE.read_text()))
    assert keywords["EXPOSE"] == "8080"
    assert keywords["USER"].split(":")[0] not in ("root", "0")
    assert env["GUNICORN_TIMEOUT"] == "0"  # no worker timeout cuts a long upload
    assert workdir == "/app"


def test_hadolint_passes_with_no_finding() -> None:
    hadolint = VENV_BIN / "hadolint"
    done = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_the_image_start_command_registers_before_it_listens_and_serves(tmp_path) -> None:
    """Run CMD as the image would (its ENV, WORKDIR = the repo root) on 127.0.0.1."""
    cmd, image_env, _workdir = image_spec()
    ts = TokenStorageDouble()
    ts.fail_next = 2  # registration takes a few back-off steps: a window for an early bind
    server = ServerThread(ts.app).start()
    port = free_port()
    env = run_env(
        image_env,
        port,
        tmp_path / "data",
        CENTRAL_SERVICE_TOKEN_STORAGE=server.url,
        REGISTRATION_MAX_DELAY="0.5",
    )
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w+b") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, timeout=60, proc=proc)
            # The moment the port accepts, the registration must already be stored.
            assert "port-local" in ts.services, log_path.read_text()
            base = f"http://127.0.0.1:{port}"
            created = requests.post(base + "/metadata/project", json={"userId": uid()}, timeout=30)
            assert created.status_code == 200, created.text
            assert created.json()["projectId"]
            assert requests.get(base + "/healthz", timeout=30).json()["status"] == "ok"
        finally:
            proc.terminate()
            proc.wait(30)
            server.stop()
    assert proc.returncode == 0, log_path.read_text()
    text = log_path.read_text()
    assert "Booting worker" in text  # gunicorn, not the werkzeug emulator, served it


HELD_OPEN = """
import time
from deploy.gunicorn_conf import *  # noqa: F403 - the image's settings and hooks, as they are
from deploy import gunicorn_conf as image


def post_fork(server, worker):
    image.post_fork(server, worker)
    with open({marker!r}, "w") as f:
        f.write("forked")
    time.sleep(2)  # hold open the window between fork and the worker's own handlers
"""


def test_a_stop_while_a_worker_boots_is_not_lost(tmp_path) -> None:
    """SIGTERM sent to the master while a worker is between its fork and its own signal
    handlers reaches the handlers the child inherited from the master; without the image's
    post_worker_init hook the worker never stops and the master waits out its whole graceful
    timeout (60 s here). The window is held open by a config that wraps the image's own and
    sleeps in post_fork; the stop must still take seconds."""
    cmd, image_env, _workdir = image_spec()
    marker = tmp_path / "forked"
    config = tmp_path / "held_open_conf.py"
    config.write_text(HELD_OPEN.format(marker=str(marker)))
    at = cmd.index("--config")
    cmd = [*cmd[: at + 1], str(config), *cmd[at + 2 :]]
    port = free_port()
    env = run_env(
        image_env,
        port,
        tmp_path / "data",
        GUNICORN_WORKERS="1",
        GUNICORN_GRACEFUL_TIMEOUT="60",
        CENTRAL_SERVICE_TOKEN_STORAGE="",
        PYTHONPATH=str(ROOT),
    )
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w+b") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(600):
                if marker.exists() or proc.poll() is not None:
                    break
                threading.Event().wait(0.05)
            assert marker.exists(), log_path.read_text()
            proc.terminate()  # the worker is asleep in post_fork: its handlers are not set
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    text = log_path.read_text()
    assert proc.returncode == 0, text
    assert "Worker exiting" in text and "Shutting down: Master" in text
