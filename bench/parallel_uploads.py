"""Benchmark: memory per concurrent stream -- N parallel uploads through the router as deployed.

Starts the connector as the image runs it (benchlib's gunicorn start: ``deploy/gunicorn_conf.py``,
``--preload``) on the local backend in a temporary folder, measures the PSS of the whole
gunicorn tree (master + workers, from ``/proc/<pid>/smaps_rollup``) at rest, then sends
``--streams`` multipart uploads of ``--size-mib`` each at once (streamed by the client with
an exact ``Content-Length``, as RDS's Exporter sends them) and samples the tree's PSS every
0.1 s until all are answered. Reports the peak, the rise over rest, and that rise per stream.
Every upload must answer 200 with its size; the figures go to the "Parallel uploads" section
of docs/benchmarks.md (replaced on each run) unless ``--no-write``.

    .venv/bin/python bench/parallel_uploads.py                 # 32 x 64 MiB
    .venv/bin/python bench/parallel_uploads.py --streams 8 --size-mib 16 --no-write
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from benchlib import (
    MiB,
    children,
    load_note,
    multipart_body,
    payload,
    start_gunicorn,
    stop,
    write_section,
)

USER = "port-local://bench@example.org:bench-token"


def pss_kib(pid: int) -> int:
    """Proportional set size of ``pid`` (shared pages split between their users), in KiB."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    found = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(found[1]) if found else 0


def tree_pss_kib(master: int) -> int:
    return pss_kib(master) + sum(pss_kib(pid) for pid in children(master))


def upload(base: str, pid: str, name: str, size: int, results: list, start: threading.Event):
    body, content_type = multipart_body(
        {"userId": USER, "filename": name}, name, lambda: payload(size), size
    )
    start.wait()
    resp = requests.post(
        f"{base}/metadata/project/{pid}/files",
        data=body,
        headers={"Content-Type": content_type},
        timeout=(10, 3600),
    )
    ok = resp.status_code == 200 and resp.json()["files"][0]["size"] == size
    results.append(ok or f"{resp.status_code} {resp.text[:200]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch the docs")
    args = parser.parse_args()
    size = args.size_mib * MiB
    note = load_note()

    with tempfile.TemporaryDirectory(prefix="rds-parallel-") as work:
        env = {
            "CONNECTOR_DATA_DIR": str(Path(work) / "data"),
            "CENTRAL_SERVICE_TOKEN_STORAGE": "",
            "USE_CASE_SERVICE_PORT_SERVICE": "",
        }
        server, base = start_gunicorn(env, Path(work) / "gunicorn.log")
        try:
            pid = requests.post(
                f"{base}/metadata/project", json={"userId": USER}, timeout=30
            ).json()["projectId"]
            # warm every worker up with a small upload each, then read the tree at rest
            warm: list = []
            go = threading.Event()
            go.set()
            for i in range(4):
                upload(base, pid, f"warm{i}.bin", MiB, warm, go)
            time.sleep(1)
            rest = tree_pss_kib(server.pid)

            results: list = []
            start = threading.Event()
            threads = [
                threading.Thread(target=upload, args=(base, pid, f"s{i}.bin", size, results, start))
                for i in range(args.streams)
            ]
            for t in threads:
                t.start()
            started = time.perf_counter()
            start.set()
            peak = rest
            while any(t.is_alive() for t in threads):
                peak = max(peak, tree_pss_kib(server.pid))
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
            workers = len(children(server.pid))
        finally:
            stop(server)

    failed = [r for r in results if r is not True]
    per_stream = (peak - rest) / args.streams / 1024
    cmd = " ".join([".venv/bin/python", "bench/parallel_uploads.py", *sys.argv[1:]])
    text = (
        "## Parallel uploads (memory per stream)\n\n"
        f"    {cmd}\n\n"
        f"{args.streams} uploads of {args.size_mib} MiB sent at once through the router as "
        "deployed (gunicorn with `deploy/gunicorn_conf.py`, `--preload`, the image's defaults) "
        "into the `local` backend; PSS of the whole gunicorn tree (master and "
        f"{workers} workers) from `/proc/<pid>/smaps_rollup`, sampled every 0.1 s. "
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {note}. PSS splits pages "
        "shared with other processes (the Python library, other Python programs running), so "
        "the rest figure moves with what else runs; the rise is the streams' own. It includes a "
        "fixed part (first use of the heap), so a run with few streams shows more per stream.\n\n"
        "| streams | size | at rest | peak | rise per stream | all answered in | failed |\n"
        "|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {args.streams} | {args.size_mib} MiB | {rest / 1024:.0f} MiB | {peak / 1024:.0f} MiB "
        f"| **{per_stream:.2f} MiB** | {elapsed:.0f} s | {len(failed)} |\n"
    )
    print(text)
    for item in failed[:5]:
        print("failed:", item)
    if not args.no_write and not failed:
        write_section("Parallel uploads (memory per stream)", text)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
