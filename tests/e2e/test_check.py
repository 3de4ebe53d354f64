"""``rds-connector check`` run as a process: every problem at once, one line each, named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.config import load_settings
from common.init import run_init
from common.runtime import Runtime
from tests.support.servers import ServerThread, free_port
from tests.support.token_storage import TokenStorageDouble

SCRIPT = str(Path(sys.executable).parent / "rds-connector")


@pytest.fixture
def token_storage() -> Iterator[tuple[TokenStorageDouble, str]]:
    double = TokenStorageDouble()
    server = ServerThread(double.app).start()
    try:
        yield double, server.url
    finally:
        server.stop()


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "CONNECTOR_CONFIG": "",
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "CONNECTOR_SERVICENAME": "port-checked",
        "REGISTRATION_DEADLINE": "2",
        **extra,
    }


def register(env: dict[str, str]) -> None:
    """Register as a start with ``env`` would (in this process)."""
    assert run_init(Runtime.build(load_settings(env)))["registration"] == "registered"


def check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("CONNECTOR_", "PASSIVE_"))}
    return subprocess.run(
        [SCRIPT, "check", *args], env={**full, **env}, capture_output=True, text=True, timeout=120
    )


def problems(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("PROBLEM")]


def test_a_good_set_up_is_all_well(tmp_path, token_storage) -> None:
    _, url = token_storage
    env = base_env(tmp_path, CENTRAL_SERVICE_TOKEN_STORAGE=url)
    register(env)
    result = check(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert problems(result.stdout) == []
    assert "OK       registration port-checked: registered and current" in result.stdout
    assert "OK       login local (metadata): accepted our login" in result.stdout
    assert "OK       login local (fileStorage): accepted our login" in result.stdout
    assert result.stdout.strip().endswith("all well")

    as_json = check(env, "--json")
    assert as_json.returncode == 0
    findings = json.loads(as_json.stdout)
    assert {f["check"] for f in findings} == {"setting", "token-storage", "registration", "login"}
    assert all(f["ok"] for f in findings)


def test_every_problem_is_named_at_once(tmp_path, token_storage) -> None:
    """A misspelt key, a wrong value, a stale registration: three lines, one run."""
    _, url = token_storage
    register(base_env(tmp_path, CENTRAL_SERVICE_TOKEN_STORAGE=url, CONNECTOR_DISPLAYNAME="Old"))
    config = tmp_path / "config.yaml"
    config.write_text("CONECTOR_METADATA: zenodo\nPASSIVE_MAX_FILES: ten\n")
    env = base_env(
        tmp_path,
        CONNECTOR_CONFIG=str(config),
        CENTRAL_SERVICE_TOKEN_STORAGE=url,
        CONNECTOR_DISPLAYNAME="New",
    )
    result = check(env)
    assert result.returncode == 1
    lines = problems(result.stdout)
    assert any(
        "CONECTOR_METADATA" in line and "did you mean CONNECTOR_METADATA?" in line for line in lines
    ), result.stdout
    assert any("PASSIVE_MAX_FILES must be a whole number, not 'ten'" in line for line in lines)
    assert len(lines) == 2  # the registration cannot be compared while the settings are wrong

    config.write_text("CONNECTOR_STORAGE: local\n")  # settings right: the stale entry shows
    result = check(env)
    assert result.returncode == 1
    (line,) = problems(result.stdout)
    assert line.startswith("PROBLEM  registration port-checked: differs")
    assert "displayName: stored 'Old', ours 'New'" in line

    findings = json.loads(check(env, "--json").stdout)
    assert [f["subject"] for f in findings if not f["ok"]] == ["port-checked"]


def test_a_token_storage_that_is_down_is_named(tmp_path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    result = check(base_env(tmp_path, CENTRAL_SERVICE_TOKEN_STORAGE=down))
    assert result.returncode == 1
    (line,) = problems(result.stdout)
    assert line == (
        f"PROBLEM  token-storage CENTRAL_SERVICE_TOKEN_STORAGE: {down} is not reachable "
        "(ConnectionError)"
    )


def test_a_missing_registration_and_a_refused_login_are_named(tmp_path, token_storage) -> None:
    _, url = token_storage
    (tmp_path / "data").write_text("a file, not a folder")
    result = check(base_env(tmp_path, CENTRAL_SERVICE_TOKEN_STORAGE=url))
    assert result.returncode == 1
    lines = problems(result.stdout)
    assert "PROBLEM  registration port-checked: not registered at the Token Storage" in lines
    assert any(line.startswith("PROBLEM  login local (metadata): ") for line in lines), (
        result.stdout
    )


def test_no_secret_reaches_the_output(tmp_path, token_storage) -> None:
    _, url = token_storage
    secret = "s3cr3t-bearer-value-0123456789"
    env = base_env(
        tmp_path,
        CENTRAL_SERVICE_TOKEN_STORAGE=url,
        CONNECTOR_CALLER_AUTH="bearer",
        CONNECTOR_CALLER_SECRET=secret,
        PASSIVE_CONCURRENCY="many",
    )
    result = check(env)
    assert result.returncode == 1
    assert secret not in result.stdout + result.stderr
