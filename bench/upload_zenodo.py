"""Benchmark: a 1 GiB upload through the router (gunicorn, as deployed) into the fake Zenodo,
against the same bytes PUT straight into the fake's bucket, in one run.

    .venv/bin/python bench/upload_zenodo.py [--size-mib 1024] [--runs 1] [--write-docs]

Everything runs on 127.0.0.1: the fake Zenodo in its own process, the connector as
``gunicorn --preload 'local_router:create_app()'`` with the Dockerfile's worker settings.
The client streams a multipart body it builds itself (fields first, then one ``file`` part,
as RDS's Exporter sends it) with an explicit ``Content-Length``; the direct PUT streams the
same file in the same chunk size. Reported: both throughputs, their ratio, and the peak
resident memory (VmHWM) of the gunicorn master and each worker. ``--write-docs`` puts the
figures into the "Zenodo upload" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from benchlib import (
    Body,
    GiB,
    MiB,
    children,
    cpu_seconds,
    file_chunks,
    hwm_kib,
    make_file,
    multipart_body,
    start_fake_zenodo,
    start_gunicorn,
    stop,
    timed,
    write_section,
)

TOKEN = "bench-token"


def start_router(work: Path, zenodo: str) -> tuple[subprocess.Popen, str]:
    env = {
        "CONNECTOR_DATA_DIR": str(work / "data"),
        "CONNECTOR_METADATA": "zenodo",
        "CONNECTOR_STORAGE": "none",
        "ZENODO_ADDRESS": zenodo,
        "ZENODO_OAUTH_CLIENT_ID": "bench",
        "ZENODO_OAUTH_CLIENT_SECRET": "bench-secret",
        "RDS_OAUTH_REDIRECT_URI": "http://127.0.0.1/redirect",
    }
    return start_gunicorn(env, work / "router.log")


def start_profilers(router: subprocess.Popen, out: Path) -> list[subprocess.Popen]:
    """py-spy on each gunicorn worker (collapsed stacks), for ``--profile``."""
    spy = Path(sys.executable).with_name("py-spy")
    return [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                "250",
                "--output",
                str(out / f"worker-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in children(router.pid)
    ]


def summarize_profiles(out: Path, top: int = 25) -> str:
    """Self time per function (leaf frames) over every worker's collapsed stacks."""
    leaf: dict[str, int] = {}
    total = 0
    for path in out.glob("worker-*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frame = stack.rsplit(";", 1)[-1]
            if "idle" in stack or not count.isdigit():
                continue
            leaf[frame] = leaf.get(frame, 0) + int(count)
            total += int(count)
    rows = sorted(leaf.items(), key=lambda kv: -kv[1])[:top]
    return "\n".join(f"{100 * n / max(total, 1):5.1f}%  {frame}" for frame, n in rows)


def run(size: int, runs: int, profile: Path | None = None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-zenodo-"))
    source = work / "source.bin"
    md5 = make_file(source, size)
    # the fake fsyncs every stored file: both legs pay the same disk, none is cache-flattered
    fake, zenodo = start_fake_zenodo(work, TOKEN, "--fsync")
    router, url = start_router(work, zenodo)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    uid = f"port-zenodo://bench@example.org:{TOKEN}"
    direct_s: list[float] = []
    router_s: list[float] = []
    router_cpu: list[float] = []
    fake_cpu: list[float] = []
    load = os.getloadavg()[0]
    try:
        for run_no in range(runs):
            # alternate which leg runs first: neither always meets a warm (or cold) cache
            for leg in ("direct", "router") if run_no % 2 == 0 else ("router", "direct"):
                if leg == "direct":
                    dep = requests.post(
                        f"{zenodo}/api/deposit/depositions", json={}, headers=auth, timeout=30
                    ).json()
                    body = Body(file_chunks(source), size)
                    before = cpu_seconds([fake.pid])
                    secs, resp = timed(
                        "PUT",
                        f"{dep['links']['bucket']}/source.bin",
                        data=body,
                        headers={**auth, "Content-Type": "application/octet-stream"},
                    )
                    assert resp.status_code == 201, resp.text
                    assert resp.json()["checksum"] == f"md5:{md5}", resp.text
                    direct_s.append(secs)
                    fake_cpu.append(cpu_seconds([fake.pid]) - before)
                    continue
                pid = requests.post(f"{url}/metadata/project", json={"userId": uid}, timeout=30)
                pid = pid.json()["projectId"]
                fields = {"userId": uid, "filename": "bench/source.bin", "username": "bench"}
                body, ctype = multipart_body(fields, "source.bin", file_chunks(source), size)
                spies = start_profilers(router, profile) if profile else []
                workers = [router.pid, *children(router.pid)]
                before = cpu_seconds(workers)
                secs, resp = timed(
                    "POST",
                    f"{url}/metadata/project/{pid}/files",
                    data=body,
                    headers={"Content-Type": ctype},
                )
                router_cpu.append(cpu_seconds(workers) - before)
                for spy in spies:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(60)
                assert resp.status_code == 200, resp.text
                assert resp.json()["files"][0]["checksum"] == f"md5:{md5}", resp.text
                router_s.append(secs)
        workers = children(router.pid)
        rss = {"master": hwm_kib(router.pid), "workers": [hwm_kib(p) for p in workers]}
    finally:
        stop(router, fake)
        for path in sorted(work.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        work.rmdir()
    direct = size / MiB / min(direct_s)
    through = size / MiB / min(router_s)
    peak = max([rss["master"], *rss["workers"]]) / 1024
    pairs = [d / r for d, r in zip(direct_s, router_s, strict=True)]
    return {
        "size_mib": size / MiB,
        "runs": runs,
        "direct_mib_s": round(direct, 1),
        "router_mib_s": round(through, 1),
        "ratio": round(through / direct, 3),
        "median_pair_ratio": round(statistics.median(pairs), 3),
        "pair_ratio_range": [round(min(pairs), 3), round(max(pairs), 3)],
        "peak_rss_mib": round(peak, 1),
        "rss_kib": rss,
        "router_cpu_s_per_gib": round(min(router_cpu) * GiB / size, 2),
        "fake_cpu_s_per_gib_direct": round(min(fake_cpu) * GiB / size, 2),
        "load_average_at_start": round(load, 2),
        "direct_seconds": [round(s, 2) for s in direct_s],
        "router_seconds": [round(s, 2) for s in router_s],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


SECTION = "Zenodo upload"


def write_docs(result: dict, command: str) -> None:
    body = f"""## {SECTION}

Command: `{command}` (from the repository root; rerunnable, cleans up after itself).

A {result["size_mib"]:.0f} MiB file goes (a) through the connector -- gunicorn `--preload`,
2 workers x 8 threads, `local_router:create_app()`, multipart body streamed by the client
with an explicit Content-Length, fields first as the Exporter sends them -- into the fake
Zenodo's bucket, and (b) straight into the fake's bucket with a streamed PUT. All on
loopback; the fake runs in its own process and fsyncs every stored file (both legs pay the
same disk). The legs alternate which runs first. Best of {result["runs"]} run(s),
measured on {result["machine"]}, {time.strftime("%Y-%m-%d")}.

| path | throughput |
|---|---|
| direct PUT into the bucket | {result["direct_mib_s"]} MiB/s |
| through the connector | {result["router_mib_s"]} MiB/s |
| ratio of the best runs (target >= 0.7) | **{result["ratio"]}** |
| **median ratio of all back-to-back pairs** (goal >= 0.9 on a quiet machine) | **{result["median_pair_ratio"]}** (range {result["pair_ratio_range"][0]} to {result["pair_ratio_range"][1]}, {result["runs"]} pairs) |
| connector peak RSS (VmHWM, max of master and workers; target < 100 MiB) | **{result["peak_rss_mib"]} MiB** |

CPU per GiB (user + system, independent of machine load): connector
{result["router_cpu_s_per_gib"]} s (all gunicorn processes), fake Zenodo on the direct path
{result["fake_cpu_s_per_gib_direct"]} s. Load average at start: {result["load_average_at_start"]}
(on {os.cpu_count()} cores). Raw VmHWM `{json.dumps(result["rss_kib"])}` KiB; seconds direct
{result["direct_seconds"]}, through the connector {result["router_seconds"]}.
"""
    write_section(SECTION, body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--profile", type=Path, help="folder for py-spy stacks of the workers")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    result = run(args.size_mib * MiB, args.runs, args.profile)
    print(json.dumps(result, indent=1))
    if args.profile:
        print(summarize_profiles(args.profile))
    if args.write_docs:
        write_docs(result, "python " + " ".join(sys.argv))
    ok = result["median_pair_ratio"] >= 0.7 and result["peak_rss_mib"] < 100
    print("targets met" if ok else "TARGETS MISSED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
