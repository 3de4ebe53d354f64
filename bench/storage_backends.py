"""Throughput and connector-side memory of the webdav and s3 backends (rerunnable).

Each server runs in its OWN process on loopback (wsgidav over a temp folder, moto's
server mode), so the figures below are the connector's alone: Python's peak allocation
while one file of ``--mib`` MiB is stored from a generator and read back, and the wall
time of each direction. Nothing is asserted: this prints figures for docs/storage.md.

    .venv/bin/python bench/storage_backends.py --mib 256
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import start_webdav  # noqa: E402

from common.backends.s3 import MiB, S3Storage  # noqa: E402
from common.backends.webdav import WebDAVStorage  # noqa: E402
from common.config import load_settings  # noqa: E402
from common.identity import Identity  # noqa: E402
from common.streams import Upload  # noqa: E402
from tests.support.servers import free_port, wait_for_port  # noqa: E402


def pattern(total: int) -> Iterator[bytes]:
    """``total`` bytes in 1 MiB chunks, cheap to make, different per chunk."""
    block = bytes(range(256)) * 4096
    for i in range(0, total, MiB):
        yield (i.to_bytes(8, "big") + block[8:])[: min(MiB, total - i)]


def measure(name: str, storage: object, who: Identity, total: int) -> None:
    expected = hashlib.md5()
    for chunk in pattern(total):
        expected.update(chunk)
    tracemalloc.start()
    started = time.perf_counter()
    stored = storage.store_file(who, "bench/file.bin", Upload("f", pattern(total), size=total))
    up = time.perf_counter() - started
    _, up_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    download = storage.open_file(who, "bench/file.bin")
    got = hashlib.md5()
    for chunk in download.chunks:
        got.update(chunk)
    download.close()
    down = time.perf_counter() - started
    _, down_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert stored["checksum"] == f"md5:{expected.hexdigest()}" == f"md5:{got.hexdigest()}"
    mib = total / MiB
    print(
        f"{name:7s} {mib:.0f} MiB  upload {mib / up:7.1f} MiB/s peak {up_peak / MiB:6.1f} MiB"
        f"  download {mib / down:7.1f} MiB/s peak {down_peak / MiB:6.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="file size in MiB")
    parser.add_argument("--part-mib", type=int, default=8, help="S3_PART_SIZE in MiB")
    args = parser.parse_args()
    total = args.mib * MiB
    procs: list[subprocess.Popen] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            s3_port = free_port()
            dav_proc, dav_url = start_webdav(Path(tmp), "tok", Path(tmp) / "webdav.log")
            procs.append(dav_proc)
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
                    stderr=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                )
            )
            wait_for_port(s3_port, proc=procs[-1])
            dav = WebDAVStorage(dav_url, system="nextcloud")
            measure("webdav", dav, Identity("alice", "tok"), total)
            settings = load_settings(
                {
                    "CONNECTOR_CONFIG": "",
                    "CONNECTOR_STORAGE": "s3",
                    "S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
                    "S3_BUCKET": "bench",
                    "S3_REGION": "us-east-1",
                    "S3_ACCESS_KEY_ID": "bench",
                    "S3_SECRET_ACCESS_KEY": "bench",
                    "S3_PART_SIZE": str(args.part_mib * MiB),
                }
            )
            s3 = S3Storage.from_settings(settings)
            s3.client.create_bucket(Bucket="bench")
            measure("s3", s3, Identity("alice"), total)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
