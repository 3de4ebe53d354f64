"""Benchmark: a 500-file folder into Zenodo through the connector under Zenodo's rate limit,
scaled down in time.

    .venv/bin/python bench/zenodo_rate.py [--files 500] [--limit 100] [--window 6] [--write-docs]

Zenodo allows a token 100 requests a minute; the fake here allows ``--limit`` per
``--window`` seconds (default 100 per 6 s: the real rate, ten times faster), in fixed
windows with the three X-RateLimit headers and 429 + Retry-After beyond. The connector
runs as deployed (gunicorn ``--preload``, ``local_router:create_app()``); files of 10 KiB
are sent one after another as RDS's Exporter sends them (multipart, fields first), into
as many drafts as Zenodo's 100-file cap needs (99 files each: one slot is the crate's).
Reported: Zenodo requests per file, 429s the fake served, wall time against the minimum
the limit allows for those requests (``(requests - limit) / limit`` windows: the first
window's worth may go at once), and what the caller saw.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import requests
from benchlib import start_fake_zenodo, stop, write_section
from upload_zenodo import start_router

TOKEN = "bench-rate-token"
PER_DRAFT = 99
SECTION = "Zenodo rate limit"


def run(files: int, limit: int, window: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-zenodo-rate-"))
    fake, zenodo = start_fake_zenodo(
        work, TOKEN, "--rate-limit", str(limit), "--rate-window", str(window)
    )
    router, url = start_router(work, zenodo)
    uid = f"port-zenodo://bench@example.org:{TOKEN}"
    base = f"{url}/metadata/project"
    statuses: dict[int, int] = {}
    try:
        drafts = math.ceil(files / PER_DRAFT)
        pids = [
            requests.post(base, json={"userId": uid}, timeout=120).json()["projectId"]
            for _ in range(drafts)
        ]
        before = requests.get(f"{zenodo}/_fake/stats", timeout=30).json()
        start = time.perf_counter()
        for i in range(files):
            name = f"folder{i // 100}/file{i:04d}.dat"
            resp = requests.post(
                f"{base}/{pids[i // PER_DRAFT]}/files",
                data={"userId": uid, "filename": name, "username": "bench"},
                files={"file": (name.rsplit("/", 1)[-1], os.urandom(10 * 1024))},
                timeout=600,
            )
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        wall = time.perf_counter() - start
        after = requests.get(f"{zenodo}/_fake/stats", timeout=30).json()
    finally:
        stop(router, fake)
        shutil.rmtree(work, ignore_errors=True)
    sent = after["requests"] - before["requests"] - 1  # less the stats call itself
    minimum = max(0, sent - limit) / limit * window  # the first window's worth is free
    return {
        "files": files,
        "limit": f"{limit} per {window:g} s",
        "zenodo_requests": sent,
        "requests_per_file": round(sent / files, 3),
        "refused_429": after["refused_429"] - before["refused_429"],
        "caller_statuses": statuses,
        "wall_s": round(wall, 1),
        "minimum_s": round(minimum, 1),
        "ratio_wall_to_minimum": round(wall / minimum, 3) if minimum else None,
    }


def write_docs(result: dict, command: str) -> None:
    body = f"""## {SECTION}

Command: `{command}` (from the repository root; rerunnable, cleans up after itself).

{result["files"]} files of 10 KiB, sent one after another through the connector (gunicorn,
as deployed) into the fake Zenodo limiting at {result["limit"]} per token (Zenodo's 100 per
minute, scaled down in time; fixed windows, X-RateLimit headers, 429 + Retry-After beyond),
into drafts of 99 files. Measured {time.strftime("%Y-%m-%d")} on a shared 2-core machine.

| figure | value |
|---|---|
| Zenodo requests per uploaded file (target <= 1.2) | **{result["requests_per_file"]}** |
| 429s the fake served | **{result["refused_429"]}** |
| statuses the caller saw | {json.dumps(result["caller_statuses"])} |
| wall time | {result["wall_s"]} s |
| minimum the limit allows for {result["zenodo_requests"]} requests | {result["minimum_s"]} s |
| ratio wall / minimum | **{result["ratio_wall_to_minimum"]}** |

The connector reads the token's `X-RateLimit-Remaining`/`-Reset` on every answer and waits
for the next window when one call is left, so the limit is met, not hit. One request per
file: the first upload to a draft reads the deposition (its bucket link and file listing,
cached per token and project for 60 s), every further upload is the PUT alone, whose
answer confirms size and MD5.
"""
    write_section(SECTION, body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    result = run(args.files, args.limit, args.window)
    print(json.dumps(result, indent=1))
    if args.write_docs:
        write_docs(result, "python " + " ".join(sys.argv))
    ok = result["requests_per_file"] <= 1.2 and set(result["caller_statuses"]) == {200}
    print("targets met" if ok else "TARGETS MISSED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
