"""Benchmark: a 1 GiB upload through the router (gunicorn, as deployed) into the fake
InvenioRDM, against the same bytes PUT straight into a draft file of the fake, in one run.

    .venv/bin/python bench/upload_inveniordm.py [--size-mib 1024] [--runs 3] [--write-docs]

Everything on 127.0.0.1: the fake InvenioRDM in its own process (werkzeug, threaded, writes
to disk), the connector as ``gunicorn --preload 'local_router:create_app()'`` with the
image's settings. The router leg is the Exporter's multipart POST (fields first, one
``file`` part, explicit Content-Length), which the connector turns into InvenioRDM's three
steps (init, streamed PUT of the content, commit + MD5 check). The direct leg does the same
three steps itself with a streamed PUT of the same file in the same chunk size. The legs
alternate which runs first; reported: the median of the per-pair ratios (router / direct
throughput) with its range, and the peak resident memory (VmHWM) of the connector's
processes. ``--write-docs`` puts the figures into docs/benchmarks.md ("InvenioRDM upload").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from benchlib import (
    Body,
    MiB,
    _spawn,
    children,
    file_chunks,
    free_port,
    hwm_kib,
    load_note,
    make_file,
    multipart_body,
    start_gunicorn,
    stop,
    timed,
    write_section,
)

TOKEN = "bench-token"
SECTION = "InvenioRDM upload"
FAKE = """
import sys
from pathlib import Path
from werkzeug.serving import make_server
from tests.support.fake_inveniordm import FakeInvenioRDM
fake = FakeInvenioRDM(Path(sys.argv[1]))
fake.add_token(sys.argv[3], user="bench")
make_server("127.0.0.1", int(sys.argv[2]), fake.app, threaded=True).serve_forever()
"""


def direct_leg(fake: str, source: Path, size: int, md5: str) -> float:
    """Create a draft, then init, PUT (timed with commit) and commit one file."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    draft = requests.post(f"{fake}/api/records", json={}, headers=auth, timeout=30).json()
    files = f"{fake}/api/records/{draft['id']}/draft/files"
    requests.post(files, json=[{"key": "source.bin"}], headers=auth, timeout=30).raise_for_status()
    start = time.perf_counter()
    put = requests.put(
        f"{files}/source.bin/content",
        data=Body(file_chunks(source), size),
        headers={**auth, "Content-Type": "application/octet-stream"},
        timeout=(10, 3600),
    )
    put.raise_for_status()
    done = requests.post(f"{files}/source.bin/commit", headers=auth, timeout=60)
    secs = time.perf_counter() - start
    assert done.json()["checksum"] == f"md5:{md5}", done.text
    return secs


def router_leg(url: str, source: Path, size: int, md5: str) -> float:
    uid = f"port-inveniordm://bench@example.org:{TOKEN}"
    pid = requests.post(f"{url}/metadata/project", json={"userId": uid}, timeout=30).json()
    fields = {"userId": uid, "filename": "bench/source.bin", "username": "bench"}
    body, ctype = multipart_body(fields, "source.bin", file_chunks(source), size)
    secs, resp = timed(
        "POST",
        f"{url}/metadata/project/{pid['projectId']}/files",
        data=body,
        headers={"Content-Type": ctype},
    )
    assert resp.status_code == 200 and resp.json()["files"][0]["checksum"] == f"md5:{md5}", (
        resp.text
    )
    return secs


def run(size: int, runs: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-inveniordm-"))
    source = work / "source.bin"
    md5 = make_file(source, size)
    port = free_port()
    fake_proc = _spawn(
        [sys.executable, "-c", FAKE, str(work / "fake"), str(port), TOKEN],
        {},
        work / "fake.log",
        port,
    )
    fake = f"http://127.0.0.1:{port}"
    env = {
        "CONNECTOR_DATA_DIR": str(work / "data"),
        "CONNECTOR_METADATA": "inveniordm",
        "CONNECTOR_STORAGE": "none",
        "INVENIORDM_ADDRESS": fake,
    }
    router, url = start_gunicorn(env, work / "router.log")
    load = load_note()
    pairs: list[tuple[float, float]] = []
    try:
        for i in range(runs):
            legs = [("direct", direct_leg, fake), ("router", router_leg, url)]
            if i % 2:
                legs.reverse()  # alternate which leg meets a warm page cache first
            secs = {name: leg(target, source, size, md5) for name, leg, target in legs}
            pairs.append((secs["direct"], secs["router"]))
        rss = {"master": hwm_kib(router.pid), "workers": [hwm_kib(p) for p in children(router.pid)]}
    finally:
        stop(router, fake_proc)
        for path in sorted(work.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        work.rmdir()
    ratios = [d / r for d, r in pairs]  # router throughput / direct throughput
    return {
        "size_mib": size / MiB,
        "runs": runs,
        "median_ratio": round(statistics.median(ratios), 3),
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        "direct_mib_s": [round(size / MiB / d, 1) for d, _ in pairs],
        "router_mib_s": [round(size / MiB / r, 1) for _, r in pairs],
        "peak_rss_mib": round(max([rss["master"], *rss["workers"]]) / 1024, 1),
        "rss_kib": rss,
        "load": load,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


def write_docs(result: dict, command: str) -> None:
    body = f"""## {SECTION}

Command: `{command}` (from the repository root; rerunnable, cleans up after itself).

A {result["size_mib"]:.0f} MiB file goes (a) through the connector -- gunicorn `--preload`,
the image's worker settings, the Exporter's multipart POST with an explicit
Content-Length -- into a draft of the fake InvenioRDM (init, streamed PUT of the content,
commit, MD5 compared), and (b) straight into a draft file of the fake with the same three
steps and a streamed PUT. All on loopback; the fake runs in its own process and writes to
disk. {result["runs"]} pairs, the leg that runs first alternating; measured on
{result["machine"]}, {time.strftime("%Y-%m-%d")}, {result["load"]} at start (the machine
was shared).

| figure | value |
|---|---|
| median of the pairs' ratios, router / direct throughput (target >= 0.7) | **{result["median_ratio"]}** |
| range of the ratios | {result["ratio_range"][0]} .. {result["ratio_range"][1]} |
| direct, per pair | {result["direct_mib_s"]} MiB/s |
| through the connector, per pair | {result["router_mib_s"]} MiB/s |
| connector peak RSS (VmHWM, max of master and workers; target < 100 MiB) | **{result["peak_rss_mib"]} MiB** |

Raw VmHWM `{json.dumps(result["rss_kib"])}` KiB.
"""
    write_section(SECTION, body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    result = run(args.size_mib * MiB, args.runs)
    print(json.dumps(result, indent=1))
    if args.write_docs:
        write_docs(result, "python " + " ".join(sys.argv))
    ok = result["median_ratio"] >= 0.7 and result["peak_rss_mib"] < 100
    print("targets met" if ok else "TARGETS MISSED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
