"""Load test: the router as deployed (gunicorn, --preload) on loopback, 50 clients syncing.

Starts ``gunicorn --preload 'local_router:create_app()'`` with the Dockerfile's workers and
threads (through ``deploy/gunicorn_conf.py`` where the image uses it) on 127.0.0.1 and the local backend in a temporary folder, then runs N client threads
for a bounded time. Each client repeats the sync workflow RDS Layer 2 drives: create a
project, PATCH its RO-Crate, upload a few small files, list them, publish. A few uploads are
100 MiB. Every multipart body is built and streamed by the client itself with an explicit
Content-Length (``requests``' ``files=`` would build it in memory), from a seeded generator,
hashing on the way. Checked: every request answered 200, every listed MD5 equal to the sent
bytes. The router processes' RSS is sampled once a second. Results go to the "Load" section
of docs/benchmarks.md (replaced on each run), with the command line.

    .venv/bin/python bench/load.py                       # 60 s, 50 clients, 4 x 100 MiB
    .venv/bin/python bench/load.py --duration 20 --clients 10 --big 1 --no-write

Nothing here leaves 127.0.0.1; the run stops by itself after --duration (plus the time the
requests in flight need to finish).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import benchlib  # noqa: E402
from benchlib import children  # noqa: E402

GUNICORN_CONF = ROOT / "deploy" / "gunicorn_conf.py"
MIB = 1024 * 1024
USER = "load@cloud.example.org"
CRATE = {
    "@context": "https://w3id.org/ro/crate/1.1/context",
    "@graph": [
        {"@id": "ro-crate-metadata.json", "@type": "CreativeWork", "about": {"@id": "./"}},
        {"@id": "./", "@type": "Dataset", "name": "Load test", "datePublished": "2026-11-27"},
    ],
}


# -- the client's own streamed multipart body ------------------------------------------------
class StreamedBody:
    """A multipart body as an iterator with ``__len__``: requests sends it with that
    Content-Length, chunk by chunk, and never holds more than one chunk."""

    def __init__(self, fields: dict[str, str], filename: str, size: int, seed: int) -> None:
        self.boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename.rsplit("/", 1)[-1]}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.head = head
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.size = size
        self.seed = seed
        self.md5 = hashlib.md5(usedforsecurity=False)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        rng = random.Random(self.seed)
        left = self.size
        while left:
            chunk = rng.randbytes(min(MIB, left))
            self.md5.update(chunk)
            left -= len(chunk)
            yield chunk
        yield self.tail


# -- measurements -------------------------------------------------------------------------
@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    bytes_up: int = 0
    files: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, route: str, seconds: float) -> None:
        with self.lock:
            self.latencies[route].append(seconds)

    def fail(self, text: str) -> None:
        with self.lock:
            self.failures.append(text)


def timed(stats: Stats, route: str, session: requests.Session, method: str, url: str, **kw):
    started = time.perf_counter()
    try:
        resp = session.request(method, url, timeout=(10, 600), **kw)
    except requests.RequestException as exc:
        stats.fail(f"{route}: {type(exc).__name__}")
        return None
    stats.record(route, time.perf_counter() - started)
    if resp.status_code != 200:
        stats.fail(f"{route}: HTTP {resp.status_code} {resp.text[:200]}")
        return None
    return resp


def upload(stats: Stats, s: requests.Session, base: str, pid: str, name: str, size: int, seed: int):
    uid = f"port-local://{USER}:load-token"
    body = StreamedBody({"userId": uid, "filename": name, "username": USER}, name, size, seed)
    route = "files_upload (100 MiB)" if size >= 50 * MIB else "files_upload (small)"
    resp = timed(
        stats,
        route,
        s,
        "POST",
        f"{base}/metadata/project/{pid}/files",
        data=body,
        headers={"Content-Type": body.content_type},
    )
    if resp is not None:
        with stats.lock:
            stats.bytes_up += size
            stats.files += 1
    return body.md5.hexdigest() if resp is not None else None


def client(n: int, base: str, deadline: float, big: list[int], stats: Stats) -> None:
    """One simulated Layer 2: the sync workflow, again and again until the deadline."""
    s = requests.Session()
    uid = f"port-local://{USER}:load-token"
    rng = random.Random(n)
    round_ = 0
    while time.monotonic() < deadline:
        round_ += 1
        created = timed(
            stats, "project_create", s, "POST", f"{base}/metadata/project", json={"userId": uid}
        )
        if created is None:
            continue
        pid = created.json()["projectId"]
        project = f"{base}/metadata/project/{pid}"
        timed(stats, "project_update", s, "PATCH", project, json={"userId": uid, "metadata": CRATE})
        sent: dict[str, str | None] = {}
        for i in range(3):
            name = f"data/c{n}/r{round_}/f{i}.bin"
            sent[name] = upload(stats, s, base, pid, name, rng.randint(1, 256 * 1024), rng.random())
        with stats.lock:
            take_big = bool(big) and big.pop() is not None
        if take_big:
            sent["big/100MiB.bin"] = upload(stats, s, base, pid, "big/100MiB.bin", 100 * MIB, n)
        listed = timed(stats, "files_list", s, "GET", f"{project}/files", json={"userId": uid})
        if listed is not None:
            got = {f["filename"]: f["checksum"] for f in listed.json()}
            for name, md5 in sent.items():
                if md5 is not None and got.get(name) != f"md5:{md5}":
                    with stats.lock:
                        stats.mismatches.append(f"{pid}/{name}")
        timed(stats, "project_publish", s, "PUT", project, json={"userId": uid})


# -- the server and its memory ---------------------------------------------------------------
def rss_kib(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(m[1]) if m else None


def sample_memory(master: int, stop: threading.Event, samples: list[tuple[float, int, int]]):
    """(seconds, master RSS, sum of workers' RSS) once a second."""
    start = time.monotonic()
    while not stop.wait(1.0):
        workers = sum(rss_kib(p) or 0 for p in children(master))
        samples.append((time.monotonic() - start, rss_kib(master) or 0, workers))


def start_gunicorn(data_dir: str, workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    """The router as the image runs it (benchlib's gunicorn start), on the local backend."""
    env = {
        "CONNECTOR_DATA_DIR": data_dir,
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_TIMEOUT": "0",
        "CENTRAL_SERVICE_TOKEN_STORAGE": "",
        "USE_CASE_SERVICE_PORT_SERVICE": "",
    }
    return benchlib.start_gunicorn(env, Path(data_dir) / "gunicorn.log")


# -- report ----------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(args: argparse.Namespace, stats: Stats, elapsed: float, mem) -> str:
    total = sum(len(v) for v in stats.latencies.values())
    lines = [
        "## Load",
        "",
        f"Command: `{' '.join(['.venv/bin/python', 'bench/load.py', *sys.argv[1:]])}` "
        f"(run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).",
        "",
        f"gunicorn --preload, {args.workers} workers x {args.threads} threads (the Dockerfile's), "
        f"local backend on a temp folder, 127.0.0.1; {args.clients} client threads for "
        f"{args.duration:.0f} s doing create, PATCH crate, 3 small uploads (1 B - 256 KiB), "
        f"list, publish; {args.big} uploads of 100 MiB, multipart streamed by the client with "
        "Content-Length. Clients and server share the 2-core machine (and other work ran on it "
        "at the same time), so the figures are a floor, not a capacity.",
        "",
        f"- requests answered: {total} in {elapsed:.1f} s = **{total / elapsed:.1f} requests/s**; "
        f"failed: {len(stats.failures)}; files uploaded: {stats.files} "
        f"({stats.bytes_up / MIB:.0f} MiB); MD5 mismatches: {len(stats.mismatches)}",
        "",
        "| route | requests | p50 ms | p90 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for route in sorted(stats.latencies):
        v = stats.latencies[route]
        lines.append(
            f"| {route} | {len(v)} | {pct(v, 0.5) * 1000:.0f} | {pct(v, 0.9) * 1000:.0f} | "
            f"{pct(v, 0.99) * 1000:.0f} | {max(v) * 1000:.0f} |"
        )
    if mem:
        workers = [w for _, _, w in mem]
        first = statistics.mean(workers[: max(1, len(workers) // 10)])
        last = statistics.mean(workers[-max(1, len(workers) // 10) :])
        lines += [
            "",
            f"Memory (RSS, sampled each second, {len(mem)} samples): master "
            f"{mem[0][1] / 1024:.0f} -> {mem[-1][1] / 1024:.0f} MiB; workers together: first "
            f"tenth {first / 1024:.0f} MiB, last tenth {last / 1024:.0f} MiB, peak "
            f"{max(workers) / 1024:.0f} MiB -- while {args.big} x 100 MiB went through.",
        ]
    if stats.failures:
        lines += ["", "First failures:", ""] + [f"- `{f}`" for f in stats.failures[:10]]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace the "## Load" section of ``path`` (other sections stay as they are)."""
    text = path.read_text("utf-8") if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"^## Load\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(section + "\n", text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section
    )
    path.write_text(text, "utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--big", type=int, default=4, help="how many 100 MiB uploads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch --out")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rds-load-") as data_dir:
        server, base = start_gunicorn(data_dir, args.workers, args.threads)
        stop = threading.Event()
        mem: list[tuple[float, int, int]] = []
        sampler = threading.Thread(target=sample_memory, args=(server.pid, stop, mem), daemon=True)
        sampler.start()
        stats = Stats()
        big = list(range(args.big))
        started = time.monotonic()
        deadline = started + args.duration
        threads = [
            threading.Thread(target=client, args=(n, base, deadline, big, stats), daemon=True)
            for n in range(args.clients)
        ]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    text = report(args, stats, elapsed, mem)
    print(text)
    if not args.no_write:
        write_section(args.out, text)
    ok = not stats.failures and not stats.mismatches
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
