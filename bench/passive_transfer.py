"""Benchmark: passive transfer from WebDAV into the fake Zenodo through the connector, against
a direct streamed copy of the same bytes in the same run.

    .venv/bin/python bench/passive_transfer.py [--size-mib 1024] [--small 500] [--runs 3]
                                               [--write-docs]

Everything runs on 127.0.0.1, each in its own process: wsgidav over a temp folder (the
``tests/support/webdav.py`` set-up), the fake Zenodo, and two connectors as deployed
(gunicorn with ``deploy/gunicorn_conf.py`` and ``--preload``): A serves ``zenodo`` for
metadata and pulls through B, which serves ``webdav`` for storage (A's
``PASSIVE_STORAGE_URL_TEMPLATE`` points at B) -- the hop RDS makes between two connectors.
B cannot look tokens up, so A's first call is refused and A asks again with the token it
looked up once in a Token Storage double (a thread of this script).

(a) one file of ``--size-mib``: the connector's ``POST .../files`` with the passive form,
against GET from wsgidav streamed straight into a PUT to the fake's bucket (Content-Length
from the GET); (b) ``--small`` files of ``--small-kib`` KiB, in folders of 100 (Zenodo's
per-record limit) into one record each, against the same GET -> PUT per file with as many
threads as the connector uses (``PASSIVE_CONCURRENCY``, 4). Runs alternate (direct, then
connector) ``--runs`` times; best of each is reported with the median ratio of the pairs,
and the peak RSS (VmHWM) of every connector process (masters and workers of A and B).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from benchlib import (
    CHUNK,
    Body,
    GiB,
    MiB,
    children,
    cpu_seconds,
    load_note,
    make_file,
    peak_rss_kib,
    start_fake_zenodo,
    start_gunicorn,
    start_webdav,
    stop,
    timed,
    write_section,
)

from tests.support.servers import ServerThread
from tests.support.token_storage import TokenStorageDouble

ZEN_TOKEN = "bench-zenodo-token"
DAV_TOKEN = "bench-dav-token"
USER = "bench@example.org"
STORAGE = "port-owncloud"
PER_RECORD = 100
CONCURRENCY = 4


class Rig:
    """The processes of one benchmark run and the calls both paths make."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[subprocess.Popen] = []
        self.ts = TokenStorageDouble()
        self.ts.tokens[(USER, STORAGE)] = DAV_TOKEN
        self.ts_server = ServerThread(self.ts.app)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the double's access lines

    def start(self) -> Rig:
        self.ts_server.start()
        dav, self.dav = start_webdav(self.work / "dav", DAV_TOKEN, self.work / "webdav.log")
        fake, self.zenodo = start_fake_zenodo(self.work, ZEN_TOKEN)
        self.procs += [dav, fake]
        self.b, b_url = start_gunicorn(
            {
                "CONNECTOR_DATA_DIR": str(self.work / "b"),
                "CONNECTOR_METADATA": "none",
                "CONNECTOR_STORAGE": "webdav",
                "CONNECTOR_SERVICENAME": STORAGE,
                "EFSS_SYSTEM": "owncloud",
                "OWNCLOUD_INSTALLATION_URL": self.dav,
                "OWNCLOUD_OAUTH_CLIENT_ID": "bench",
                "OWNCLOUD_OAUTH_CLIENT_SECRET": "bench-oc-secret",
            },
            self.work / "router-b.log",
        )
        self.procs.append(self.b)
        self.a, self.a_url = start_gunicorn(
            {
                "CONNECTOR_DATA_DIR": str(self.work / "a"),
                "CONNECTOR_METADATA": "zenodo",
                "CONNECTOR_STORAGE": "none",
                "ZENODO_ADDRESS": self.zenodo,
                "ZENODO_OAUTH_CLIENT_ID": "bench",
                "ZENODO_OAUTH_CLIENT_SECRET": "bench-secret",
                "RDS_OAUTH_REDIRECT_URI": "http://127.0.0.1/redirect",
                "PASSIVE_STORAGE_URL_TEMPLATE": b_url,
                "PASSIVE_CONCURRENCY": str(CONCURRENCY),
                "USE_CASE_SERVICE_PORT_SERVICE": self.ts_server.url,
            },
            self.work / "router-a.log",
        )
        self.procs.append(self.a)
        return self

    def stop(self) -> None:
        stop(*reversed(self.procs))
        self.ts_server.stop()

    def connector_pids(self) -> list[int]:
        return [self.a.pid, *children(self.a.pid), self.b.pid, *children(self.b.pid)]

    # -- direct path ---------------------------------------------------------------------
    def _zen(self, method: str, url: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {ZEN_TOKEN}", **kw.pop("headers", {})}
        return requests.request(method, url, headers=headers, timeout=(10, 3600), **kw)

    def new_bucket(self) -> str:
        dep = self._zen("POST", f"{self.zenodo}/api/deposit/depositions", json={})
        return dep.json()["links"]["bucket"]

    def copy(self, path: str, bucket: str, key: str) -> str:
        """GET from wsgidav streamed into a PUT with its Content-Length; returns the MD5."""
        src = requests.get(
            f"{self.dav}/remote.php/webdav/{path}",
            headers={"Authorization": f"Bearer {DAV_TOKEN}"},
            stream=True,
            timeout=(10, 3600),
        )
        src.raise_for_status()
        size = int(src.headers["Content-Length"])
        with src:
            body = Body(lambda: src.iter_content(CHUNK), size)
            put = self._zen("PUT", f"{bucket}/{key}", data=body)
        assert put.status_code == 201, put.text
        return put.json()["checksum"].removeprefix("md5:")

    def empty(self, bucket: str) -> None:
        for obj in self._zen("GET", bucket).json()["contents"]:
            self._zen("DELETE", f"{bucket}/{obj['key']}")

    # -- through the connector -------------------------------------------------------------
    def uid(self) -> str:
        return f"port-zenodo://{USER}:{ZEN_TOKEN}"

    def project(self) -> str:
        url = f"{self.a_url}/metadata/project"
        resp = requests.post(url, json={"userId": self.uid()}, timeout=60)
        return resp.json()["projectId"]

    def pull(self, pid: str, folder: str) -> tuple[float, dict]:
        form = {"folder": folder, "service": STORAGE, "username": USER, "userId": self.uid()}
        secs, resp = timed("POST", f"{self.a_url}/metadata/project/{pid}/files", data=form)
        assert resp.status_code == 200, resp.text
        return secs, resp.json()

    def drop(self, pid: str) -> None:
        requests.delete(
            f"{self.a_url}/metadata/project/{pid}/files", json={"userId": self.uid()}, timeout=600
        ).raise_for_status()


def big_pair(rig: Rig, md5: str) -> tuple[float, float, float]:
    """Seconds direct, seconds through the connector, connector CPU seconds."""
    bucket = rig.new_bucket()
    start = time.perf_counter()
    assert rig.copy("big/source.bin", bucket, "source.bin") == md5
    direct = time.perf_counter() - start
    rig.empty(bucket)
    pid = rig.project()
    pids = rig.connector_pids()
    before = cpu_seconds(pids)
    secs, answer = rig.pull(pid, "/big")
    cpu = cpu_seconds(pids) - before
    assert [(f["md5"], f["status"]) for f in answer["files"]] == [(md5, "stored")], answer
    rig.drop(pid)
    return direct, secs, cpu


def small_pair(rig: Rig, groups: list[list[str]]) -> tuple[float, float]:
    """Seconds direct and through the connector for every small file (one record per group)."""
    direct = 0.0
    for group in groups:
        bucket = rig.new_bucket()
        start = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(lambda p, b=bucket: rig.copy(p, b, p.rsplit("/", 1)[-1]), group))
        direct += time.perf_counter() - start
    through = 0.0
    for group in groups:
        folder = "/" + group[0].rsplit("/", 1)[0]
        secs, answer = rig.pull(rig.project(), folder)
        assert answer["counts"]["stored"] == len(group), answer["counts"]
        through += secs
    return direct, through


def make_small(root: Path, count: int, size: int) -> list[list[str]]:
    paths = [f"small/part-{i // PER_RECORD}/f{i:04}.bin" for i in range(count)]
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(os.urandom(size))
    return [paths[i : i + PER_RECORD] for i in range(0, count, PER_RECORD)]


def run(size: int, small: int, small_kib: int, runs: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-passive-"))
    home = work / "dav" / "alice"
    md5 = make_file(home / "big" / "source.bin", size)
    groups = make_small(home, small, small_kib * 1024)
    load_before = load_note()
    rig = Rig(work).start()
    big: list[tuple[float, float, float]] = []
    little: list[tuple[float, float]] = []
    try:
        for _ in range(runs):
            big.append(big_pair(rig, md5))
            little.append(small_pair(rig, groups))
        rss = {pid: kib for pid, kib in peak_rss_kib(rig.connector_pids()).items()}
        roles = {rig.a.pid: "A master", rig.b.pid: "B master"}
        roles |= {p: "A worker" for p in children(rig.a.pid)}
        roles |= {p: "B worker" for p in children(rig.b.pid)}
    finally:
        rig.stop()
        shutil.rmtree(work, ignore_errors=True)
    best_direct = min(d for d, _, _ in big)
    best_through = min(t for _, t, _ in big)
    sd, st = min(d for d, _ in little), min(t for _, t in little)
    return {
        "size_mib": size / MiB,
        "runs": runs,
        "direct_mib_s": round(size / MiB / best_direct, 1),
        "connector_mib_s": round(size / MiB / best_through, 1),
        "ratio": round(best_direct / best_through, 3),
        "median_pair_ratio": round(statistics.median(d / t for d, t, _ in big), 3),
        "connector_cpu_s_per_gib": round(min(c for _, _, c in big) * GiB / size, 2),
        "peak_rss_mib": {f"{roles[p]} {p}": round(k / 1024, 1) for p, k in rss.items()},
        "peak_rss_max_mib": round(max(rss.values()) / 1024, 1),
        "small_files": small,
        "small_kib": small_kib,
        "small_direct_s": round(sd, 2),
        "small_connector_s": round(st, 2),
        "small_direct_ms_per_file": round(1000 * sd / small, 1),
        "small_connector_ms_per_file": round(1000 * st / small, 1),
        "small_overhead_ms_per_file": round(1000 * (st - sd) / small, 1),
        "seconds_big": [[round(d, 2), round(t, 2)] for d, t, _ in big],
        "seconds_small": [[round(d, 2), round(t, 2)] for d, t in little],
        "load_before": load_before,
        "load_after": load_note(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }


SECTION = "Passive transfer"


def write_docs(r: dict, command: str, busy: str) -> None:
    rss = ", ".join(f"{role} {mib}" for role, mib in r["peak_rss_mib"].items())
    body = f"""## {SECTION}

Command: `{command}` (from the repository root; rerunnable, cleans up after itself).

The connector as RDS uses it in passive mode: connector A (`CONNECTOR_METADATA=zenodo`)
gets the plain form `folder`, `service`, `username`, `userId` and pulls the folder through
connector B (`CONNECTOR_STORAGE=webdav`, A's `PASSIVE_STORAGE_URL_TEMPLATE` points at it),
which reads from wsgidav; A streams each file into the fake Zenodo's bucket. A and B run
as deployed (gunicorn, `deploy/gunicorn_conf.py`, `--preload`: 2 gevent workers);
wsgidav and the fake run in their own processes. Chosen: a second router serving
webdav rather than A reading WebDAV in-process, because that is the hop a real
deployment makes (one connector per service) and it costs one more copy of every byte.
The direct path is what a program with both tokens would do: GET from wsgidav streamed
into a PUT to the bucket with the GET's Content-Length. Paths alternate, best of
{r["runs"]}; {r["machine"]}, {time.strftime("%Y-%m-%d")}.

| {r["size_mib"]:.0f} MiB file | throughput |
|---|---|
| direct GET -> PUT | {r["direct_mib_s"]} MiB/s |
| passive transfer through A and B | {r["connector_mib_s"]} MiB/s |
| ratio of the best runs (target >= 0.7) | **{r["ratio"]}** |
| median ratio of back-to-back pairs | {r["median_pair_ratio"]} |
| peak RSS, largest connector process (target < 100 MiB) | **{r["peak_rss_max_mib"]} MiB** |

Peak RSS (VmHWM, MiB) of every connector process: {rss}. Connector CPU (user + system
of A and B, all processes) per GiB: {r["connector_cpu_s_per_gib"]} s. Seconds per pair
[direct, connector]: {r["seconds_big"]}.

{r["small_files"]} files of {r["small_kib"]} KiB, in folders of 100 (Zenodo allows 100 files
per record), one record each; the direct copy uses {CONCURRENCY} threads like the connector:

| {r["small_files"]} x {r["small_kib"]} KiB | total | per file |
|---|---|---|
| direct GET -> PUT | {r["small_direct_s"]} s | {r["small_direct_ms_per_file"]} ms |
| passive transfer | {r["small_connector_s"]} s | {r["small_connector_ms_per_file"]} ms |
| overhead of the connector | | **{r["small_overhead_ms_per_file"]} ms** |

Per file the connector does more than the direct copy: B authenticates the caller and
opens the WebDAV GET; A checks the per-record limits and the resume state against the
draft's listing, which it reads once per record (cached), so each further file is the PUT
alone, one Zenodo call as in the direct copy (see "Zenodo rate limit").
Seconds per pair [direct, connector]: {r["seconds_small"]}.

Load: before the run {r["load_before"]}; after it (this benchmark's five busy processes
included) {r["load_after"]}. {busy}
"""
    write_section(SECTION, body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=500, help="number of small files")
    parser.add_argument("--small-kib", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--busy", default="", help="a sentence on other load, for the docs")
    args = parser.parse_args()
    result = run(args.size_mib * MiB, args.small, args.small_kib, args.runs)
    print(json.dumps(result, indent=1))
    if args.write_docs:
        argv = [a for a in sys.argv if a != "--busy" and a != args.busy]
        write_docs(result, "python " + " ".join(argv), args.busy)
    ok = result["ratio"] >= 0.7 and result["peak_rss_max_mib"] < 100
    print("targets met" if ok else "TARGETS MISSED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
