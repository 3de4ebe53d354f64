"""Cold start: how long a function's process takes to answer its first request.

    .venv/bin/python bench/coldstart.py [--runs 21] [--write]

Each variant is a fresh ``functions-framework --target NAME --source main.py`` process (as
Cloud Functions runs it: gunicorn, one worker), started from a bundle built by
``deploy/cloudfunctions`` into a temporary folder outside the repository (no editable
install on the path), with the bytecode the build ships; the processes write none
(``PYTHONDONTWRITEBYTECODE=1``: on the platform each instance starts from the image, so
bytecode written at run time is lost with it). The clock runs from ``Popen`` to the end of
the first answered request (polled every 2 ms until the port accepts, then one request).
Variants:

- ``hello``: a bare functions-framework function returning a string (the yardstick);
- ``projects_list``: ``GET /metadata/project`` on the ``local`` backend, caller auth off;
- ``storage_file_get``: ``GET /storage/file`` of a small file, caller auth off;
- ``projects_list, source only``: the same bundle without the bytecode the build ships
  (what every cold start compiled before the bundles carried it);
- ``projects_list+google``: ``projects_list`` with ``CONNECTOR_CALLER_AUTH=google`` and a (bogus)
  token: checking it imports google-auth, whose fetch of Google's certificates goes to a
  closed port on loopback (``HTTPS_PROXY``), so the answer is a 503 and nothing leaves.

Runs alternate between variants (hello, f1, f2, ..., hello, f1, ...) so machine load
falls on all alike; the figures are medians, with the peak RSS of the worker process.
``--write`` replaces the "Cold start" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import children, free_port, hwm_kib, load_note, write_section

from common.routes import ROUTES
from deploy.cloudfunctions import build

HELLO = """import functions_framework


@functions_framework.http
def hello(request):
    return "hello"
"""
USER = "coldstart-bench"
SEED = """
import io, sys
import functions_framework
client = functions_framework.create_app("storage_file_post", sys.argv[1]).test_client()
form = {"userId": sys.argv[2], "filepath": "/a.txt", "file": (io.BytesIO(b"cold\\n"), "a.txt")}
resp = client.post("/storage/file", data=form)
assert resp.status_code == 200, resp.get_data(as_text=True)
"""


def bundles(work: Path) -> dict[str, Path]:
    """The hello function and the connector bundles, built as the deploy builds them (and
    one without its bytecode)."""
    out = {}
    for route in ROUTES:
        if route.name in ("projects_list", "storage_file_get", "storage_file_post"):
            out[route.name] = build.build_bundle(route, work / route.name)
    source_only = work / "projects_list-source"
    shutil.copytree(out["projects_list"], source_only, ignore=shutil.ignore_patterns("*.pyc"))
    out["projects_list, source only"] = source_only
    hello = work / "hello"
    hello.mkdir()
    (hello / "main.py").write_text(HELLO)
    out["hello"] = hello
    return out


def wait_accepting(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.002)
    raise TimeoutError(port)


def one_start(target: str, bundle: Path, env: dict[str, str], work: Path) -> tuple[float, int]:
    """Seconds from spawn to the first answer, and the worker's peak RSS in KiB."""
    port = free_port()
    ff = Path(sys.executable).with_name("functions-framework")
    cmd = [str(ff), "--target", target, "--source", str(bundle / "main.py")]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    request: dict = {"timeout": 30, "headers": {"Authorization": "Bearer not-a-token"}}
    path = "/"
    if target == "projects_list":
        path, request["json"] = "/metadata/project", {"userId": USER}
    elif target == "storage_file_get":
        path, request["json"] = "/storage/file", {"userId": USER, "filepath": "/a.txt"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_accepting(port, proc, start + 60)
        resp = requests.get(f"http://127.0.0.1:{port}{path}", **request)
        took = time.perf_counter() - start
        expected = 503 if env.get("CONNECTOR_CALLER_AUTH") == "google" else 200
        if resp.status_code != expected:
            raise RuntimeError(f"{target}: {resp.status_code} {resp.text[:200]}")
        workers = children(proc.pid)
        rss = max((hwm_kib(pid) for pid in workers), default=0)
        return took, rss
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="coldstart-") as tmp:
        work = Path(tmp)
        built = bundles(work)
        data = work / "data"
        base_env = {
            k: v
            for k, v in os.environ.items()
            if k != "PYTHONPATH"
            and not k.startswith(("CONNECTOR_", "CENTRAL_", "USE_CASE_", "K_", "GOOGLE_"))
            and k.lower() not in ("https_proxy", "http_proxy", "all_proxy")
        }
        base_env.update(
            CONNECTOR_CONFIG="",
            CONNECTOR_DATA_DIR=str(data),
            LOGLEVEL="WARNING",
            PYTHONDONTWRITEBYTECODE="1",
        )
        google = {
            **base_env,
            "CONNECTOR_CALLER_AUTH": "google",
            "CONNECTOR_CALLER_AUDIENCE": "https://example.invalid/f",
            "HTTPS_PROXY": f"http://127.0.0.1:{free_port()}",
        }
        variants = [  # (name, target, bundle, environment)
            ("hello", "hello", "hello", base_env),
            ("projects_list", "projects_list", "projects_list", base_env),
            ("storage_file_get", "storage_file_get", "storage_file_get", base_env),
            ("projects_list, source only", "projects_list", "projects_list, source only", base_env),
            ("projects_list+google", "projects_list", "projects_list", google),
        ]
        # The file storage_file_get serves, put there the way a function would.
        seed = subprocess.run(
            [sys.executable, "-c", SEED, str(built["storage_file_post"] / "main.py"), USER],
            cwd=work,
            env=base_env,
            capture_output=True,
            text=True,
        )
        if seed.returncode:
            print(seed.stderr, file=sys.stderr)
            return 1
        times: dict[str, list[float]] = {name: [] for name, *_ in variants}
        rss: dict[str, list[int]] = {name: [] for name, *_ in variants}
        for _ in range(args.runs):
            for name, target, bundle, env in variants:
                took, kib = one_start(target, built[bundle], env, work)
                times[name].append(took)
                rss[name].append(kib)
    hello = statistics.median(times["hello"])
    rows = [
        "| variant | first answer, median (s) | min | max | / hello | worker peak RSS (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in times.items():
        med = statistics.median(values)
        mib = statistics.median(rss[name]) / 1024
        rows.append(
            f"| `{name}` | {med:.3f} | {min(values):.3f} | {max(values):.3f} "
            f"| {med / hello:.2f} | {mib:.1f} |"
        )
    table = "\n".join(rows)
    print(table)
    print(load_note())
    if args.write:
        write_section("Cold start", section_text(table, args.runs))
    return 0


def section_text(table: str, runs: int) -> str:
    return f"""## Cold start

How long a function's own process takes to answer its first request, against a bare
functions-framework "hello" function (the target: within 1.3 x). Measured by
`bench/coldstart.py`: each run spawns `functions-framework --target NAME --source main.py`
from a bundle built by `deploy/cloudfunctions` (outside the repository, no editable
install, with the bytecode the build ships; the processes write none), polls the port every
2 ms and sends one request; the clock stops at its answer. The variants alternate, {runs}
runs each; medians, and the worker's peak RSS.

{table}

{load_note()}; Python {sys.version.split()[0]}.

Rerun: `.venv/bin/python bench/coldstart.py --runs 21` (add `--write` to replace this
section). What keeps a function close to "hello": google-auth only with caller auth on,
`requests` only where a function calls out, prometheus-client only in the router, and the
bundle's own bytecode (the `source only` row is without it);
`tests/e2e/test_cold_imports.py` asserts the imports, not the times.
"""


if __name__ == "__main__":
    raise SystemExit(main())
