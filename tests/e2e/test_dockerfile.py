"""The combined image, checked without a container engine.

The start command is read FROM the Dockerfile (its exec-form ``CMD``, ``ENV`` and ``WORKDIR``)
and run for real on loopback, so the image cannot drift from what the test proves; hadolint
lints the file with every rule on.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import requests

from tests.conftest import uid
from tests.support.servers import ROOT, ServerThread, free_port, wait_for_port
from tests.support.token_storage import TokenStorageDouble

DOCKERFILE = ROOT / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), args.strip()))
    return out


def image_spec() -> tuple[list[str], dict[str, str], str]:
    """The image's CMD (exec form), its ENV, and its WORKDIR."""
    cmd: list[str] | None = None
    env: dict[str, str] = {}
    workdir = "/"
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "CMD":
            cmd = json.loads(args)  # exec form, or this fails
        elif keyword == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
        elif keyword == "WORKDIR":
            workdir = args
    assert cmd is not None, "the Dockerfile has no CMD"
    return cmd, env, workdir


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
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_", "GUNICORN_"))},
        **image_env,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "CONNECTOR_CONFIG": "",
        "CENTRAL_SERVICE_TOKEN_STORAGE": server.url,
        "REGISTRATION_MAX_DELAY": "0.5",
    }
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
