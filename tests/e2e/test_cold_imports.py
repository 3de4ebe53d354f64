"""What a function's process imports: google-auth (and cryptography) only when configured,
``requests`` only where the function calls out, prometheus-client only where ``/metrics``
is served (the router).

Each case runs in a fresh interpreter (``sys.modules`` of this one is shared by every test):
functions are loaded the way functions-framework loads them and answer one request each;
then the probe prints which of the watched modules were imported. Not timed: the figures
are ``bench/coldstart.py``'s (docs/benchmarks.md, "Cold start").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.routes import ROUTES
from local_router import FUNCTIONS
from tests.support.servers import free_port

WATCHED = (
    "google.auth",
    "google.oauth2",
    "cryptography",
    "requests",
    "urllib3",
    "prometheus_client",
)
GOOGLE = ["google.auth", "google.oauth2", "cryptography"]
# on the local backend with caller auth off, the one function that calls out: init
CALLS_OUT = {"init"}  # registers the connector with the Token Storage
PROBE = """
import json, sys
import functions_framework
functions, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
statuses = {}
for name, method, path, source in functions:
    client = functions_framework.create_app(name, source).test_client()
    headers = {"Authorization": "Bearer not-a-token"}
    resp = client.open(path, method=method, json={"userId": "cold-imports"}, headers=headers)
    statuses[name] = resp.status_code
print(json.dumps({"statuses": statuses, "loaded": [m for m in watched if m in sys.modules]}))
"""


def probe(tmp_path: Path, names: set[str] | None = None, **env: str) -> dict:
    functions = [
        [
            r.name,
            r.method,
            r.path.replace("{project_id}", "0123456789abcdef").replace("{file_id:path}", "a.txt"),
            str(FUNCTIONS / r.name / "main.py"),
        ]
        for r in ROUTES
        if names is None or r.name in names
    ]
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONNECTOR_", "CENTRAL_", "USE_CASE_", "GOOGLE_", "GCE_", "K_"))
        and k.lower() not in ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(functions), json.dumps(WATCHED)],
        cwd=tmp_path,
        env={**clean, "CONNECTOR_CONFIG": "", "CONNECTOR_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_no_function_imports_google_auth_with_caller_auth_off(tmp_path: Path) -> None:
    seen = probe(tmp_path)
    assert set(seen["statuses"]) == {r.name for r in ROUTES}
    assert all(status < 500 for status in seen["statuses"].values()), seen["statuses"]
    assert seen["statuses"]["projects_list"] == 200  # a request really was served
    assert not set(seen["loaded"]) & set(GOOGLE)


def test_only_a_function_that_calls_out_imports_requests(tmp_path: Path) -> None:
    """One process per function (once imported, a module stays): on the ``local``
    backend only init loads ``requests``; no function loads prometheus-client (it serves
    no ``/metrics``). Active uploads included: the multipart path never loads passive mode."""
    loaded = {}
    for r in ROUTES:
        folder = tmp_path / r.name
        folder.mkdir()
        seen = probe(folder, {r.name})
        assert seen["statuses"][r.name] < 500, seen
        loaded[r.name] = seen["loaded"]
    assert {name for name, mods in loaded.items() if "requests" in mods} == CALLS_OUT
    assert not any("prometheus_client" in mods for mods in loaded.values()), loaded
    assert not any(set(mods) & set(GOOGLE) for mods in loaded.values()), loaded


@pytest.mark.parametrize("platform", [{}, {"K_SERVICE": "rds-local-init"}], ids=["here", "gcf"])
def test_google_caller_auth_does_import_it(tmp_path: Path, platform: dict[str, str]) -> None:
    """The probe can fail: with caller auth on, checking the presented token loads
    google-auth. Its fetch of Google's certificates goes to a closed port on loopback (the
    proxy), so nothing leaves the machine and every answer is a 503."""
    seen = probe(
        tmp_path,
        CONNECTOR_CALLER_AUTH="google",
        CONNECTOR_CALLER_AUDIENCE="https://example.invalid/f",
        HTTPS_PROXY=f"http://127.0.0.1:{free_port()}",
        **platform,
    )
    assert set(seen["statuses"].values()) == {503}, seen["statuses"]
    assert "google.auth" in seen["loaded"]
