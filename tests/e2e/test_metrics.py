"""/metrics counts every request of every gunicorn worker, as the image runs it; and with
``LOG_FORMAT=json`` every line gunicorn and the connector write is one JSON object."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import requests

from tests.support.servers import ROOT, free_port, wait_for_port

MAX_REQUESTS = 200  # the kernel spreads new connections; two workers serve long before this


def test_metrics_sum_over_all_gunicorn_workers(tmp_path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        {
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "CONNECTOR_DATA_DIR": str(tmp_path),
            "CONNECTOR_CONFIG": "",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "2",
            "GUNICORN_KEEPALIVE": "0",
            "LOGLEVEL": "INFO",
            "LOG_FORMAT": "json",
        }
    )
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--preload",
                "--config",
                "deploy/gunicorn_conf.py",
                "local_router:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, proc=proc)
            url = f"http://127.0.0.1:{port}"
            sent, workers = 0, set()
            # a new connection each time, until the access lines show two workers answered
            while len(workers) < 2 and sent < MAX_REQUESTS:
                resp = requests.post(
                    f"{url}/metadata/project",
                    json={"userId": "port-local://a:t"},
                    headers={"Connection": "close"},
                    timeout=30,
                )
                assert resp.status_code == 200
                sent += 1
                workers = {e["pid"] for e in _access_lines(log_path)}
            assert len(workers) == 2, f"one worker answered all {sent} requests"
            pattern = re.compile(
                r'^rds_connector_requests_total\{function="project_create",method="POST",status="200"\} (\S+)$',
                re.M,
            )
            for _ in range(6):  # every scrape, whichever worker answers, sees all of them
                text = requests.get(
                    f"{url}/metrics", headers={"Connection": "close"}, timeout=30
                ).text
                match = pattern.search(text)
                assert match and float(match[1]) == float(sent), text[:2000]
        finally:
            proc.terminate()
            proc.wait(20)
    lines = log_path.read_text("utf-8").splitlines()
    entries = [json.loads(line) for line in lines]  # every line, gunicorn's too, is JSON
    loggers = {e["logger"] for e in entries}
    assert {"gunicorn.error", "rds.http", "rds.init"} <= loggers, loggers
    assert any(e["message"].startswith("Listening at") for e in entries)


def _access_lines(path) -> list[dict]:
    out = []
    for line in path.read_text("utf-8").splitlines():
        entry = json.loads(line)
        if entry["message"].startswith("access function=project_create"):
            out.append(entry)
    return out
