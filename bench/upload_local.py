"""Benchmark: a large upload through the router (as deployed: gunicorn) into the local backend.

Measures throughput of one streamed multipart upload of SIZE bytes and the router's peak
resident memory (VmHWM of the gunicorn master and workers), against a plain streamed write
of the same bytes to disk in the same run. Memory must stay flat whatever the size.

    .venv/bin/python bench/upload_local.py [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import requests
from benchlib import CHUNK, children, multipart_body, payload, peak_rss_kib, start_gunicorn, stop


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    size = args.size_mib * CHUNK
    work = Path(tempfile.mkdtemp(prefix="rds-bench-"))
    proc, url = start_gunicorn({"CONNECTOR_DATA_DIR": str(work / "data")}, work / "router.log")
    try:
        uid = "port-local://bench@example.org:t"
        pid = requests.post(f"{url}/metadata/project", json={"userId": uid}, timeout=30).json()[
            "projectId"
        ]
        fields = {"userId": uid, "filename": "big/file.bin", "username": "bench"}
        body, ctype = multipart_body(fields, "file.bin", lambda: payload(size), size)
        t0 = time.perf_counter()
        resp = requests.post(
            f"{url}/metadata/project/{pid}/files",
            data=body,
            headers={"Content-Type": ctype},
            timeout=3600,
        )
        routed = time.perf_counter() - t0
        assert resp.status_code == 200, resp.text
        expected = hashlib.md5(usedforsecurity=False)
        for chunk in payload(size):
            expected.update(chunk)
        assert resp.json()["files"][0]["checksum"] == "md5:" + expected.hexdigest()
        peaks = peak_rss_kib([proc.pid, *children(proc.pid)])

        target = work / "direct.bin"
        t0 = time.perf_counter()
        with open(target, "wb") as out:
            for chunk in payload(size):
                out.write(chunk)
        direct = time.perf_counter() - t0
    finally:
        stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    mib = size / CHUNK
    print(f"size: {mib:.0f} MiB")
    print(f"through the router: {mib / routed:.0f} MiB/s ({routed:.1f} s)")
    print(f"direct write to disk: {mib / direct:.0f} MiB/s ({direct:.1f} s)")
    print(f"ratio: {direct / routed:.2f}")
    print(
        "peak RSS per process (MiB): " + ", ".join(f"{p}: {k / 1024:.0f}" for p, k in peaks.items())
    )
    print(f"peak RSS max (MiB): {max(peaks.values()) / 1024:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
