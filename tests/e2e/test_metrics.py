"""/metrics counts every request of every gunicorn worker, as the image runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import requests

from tests.support.servers import ROOT, free_port, wait_for_port


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
            "LOGLEVEL": "WARNING",
        }
    )
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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc=proc)
        url = f"http://127.0.0.1:{port}"
        for _ in range(30):  # a new connection each time: the kernel spreads them
            resp = requests.post(
                f"{url}/metadata/project",
                json={"userId": "port-local://a:t"},
                headers={"Connection": "close"},
                timeout=30,
            )
            assert resp.status_code == 200
        pattern = re.compile(
            r'^rds_connector_requests_total\{function="project_create",method="POST",status="200"\} (\S+)$',
            re.M,
        )
        for _ in range(6):  # every scrape, whichever worker answers, sees all 30
            text = requests.get(f"{url}/metrics", headers={"Connection": "close"}, timeout=30).text
            match = pattern.search(text)
            assert match and float(match[1]) == 30.0, text[:2000]
    finally:
        proc.terminate()
        proc.wait(20)
