"""The combined image's start command, read from the Dockerfile (its exec-form ``CMD``,
``ENV`` and ``WORKDIR``), so tests run exactly what the image runs, on loopback."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from tests.support.servers import ROOT

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


def run_env(image_env: dict[str, str], port: int, data_dir: Path, **extra: str) -> dict[str, str]:
    """The image's ENV over ours (less our CONNECTOR_/GUNICORN_ settings), on 127.0.0.1:port,
    with the venv's gunicorn first on PATH, no config file, and ``extra`` on top."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_", "GUNICORN_"))},
        **image_env,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "CONNECTOR_DATA_DIR": str(data_dir),
        "CONNECTOR_CONFIG": "",
        **extra,
    }
