"""Benchmark: a large upload through the router (as deployed: gunicorn) into the local backend.

Measures throughput of one streamed multipart upload of SIZE bytes and the router's peak
resident memory (VmHWM of the gunicorn master and workers), against a plain streamed write
of the same bytes to disk in the same run. Memory must stay flat whatever the size.

    .venv/bin/python bench/upload_local.py [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.servers import free_port, wait_for_port  # noqa: E402

CHUNK = 1024 * 1024
BLOCK = os.urandom(CHUNK)


def payload(size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        n = min(CHUNK, left)
        yield BLOCK[:n]
        left -= n


class MultipartBody:
    """A multipart body streamed from a generator, with its exact length (like RDS's Exporter)."""

    def __init__(self, fields: dict[str, str], filename: str, size: int) -> None:
        self.boundary = "rdsbench" + os.urandom(8).hex()
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self.head, self.tail, self.size = head, f"\r\n--{self.boundary}--\r\n".encode(), size

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        yield from payload(self.size)
        yield self.tail

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"


def peak_rss_kib(pids: list[int]) -> dict[int, int]:
    out = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[pid] = int(line.split()[1])
        except OSError:
            pass
    return out


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    size = args.size_mib * CHUNK
    work = Path(tempfile.mkdtemp(prefix="rds-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "CONNECTOR_DATA_DIR": str(work / "data"),
        "CONNECTOR_CONFIG": "",
        "LOGLEVEL": "WARNING",
    }
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--preload",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--threads",
        "8",
        "--timeout",
        "0",
        "local_router:create_app()",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        wait_for_port(port, proc=proc)
        uid = "port-local://bench@example.org:t"
        pid = requests.post(
            f"http://127.0.0.1:{port}/metadata/project", json={"userId": uid}, timeout=30
        ).json()["projectId"]
        body = MultipartBody(
            {"userId": uid, "filename": "big/file.bin", "username": "bench"}, "file.bin", size
        )
        t0 = time.perf_counter()
        resp = requests.post(
            f"http://127.0.0.1:{port}/metadata/project/{pid}/files",
            data=body,
            headers={"Content-Type": body.content_type},
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
        proc.terminate()
        proc.wait(10)
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
