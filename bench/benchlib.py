"""What the benchmarks share: request bodies of known length, processes on loopback, /proc.

Boundary: helpers for ``bench/*.py`` only (never imported by the connector or the tests).
Every server runs in its own process so a figure read from ``/proc`` belongs to one
program; the connector runs as deployed (gunicorn with ``deploy/gunicorn_conf.py`` and
``--preload``). Bodies are iterables with ``__len__``, so ``requests`` sends them with a
``Content-Length`` and streams them chunk by chunk, as RDS's Exporter does.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.servers import free_port, wait_for_port  # noqa: E402

CHUNK = 1024 * 1024
MiB = 1024 * 1024
GiB = 1024 * MiB


class Body:
    """``head``, then the chunks ``source()`` yields (exactly ``size`` bytes), then ``tail``."""

    def __init__(
        self,
        source: Callable[[], Iterable[bytes]],
        size: int,
        head: bytes = b"",
        tail: bytes = b"",
    ) -> None:
        self.source, self.size, self.head, self.tail = source, size, head, tail

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        if self.head:
            yield self.head
        yield from self.source()
        if self.tail:
            yield self.tail


_BLOCK = os.urandom(CHUNK)


def payload(size: int) -> Iterator[bytes]:
    """``size`` bytes of one random MiB block, repeated, in 1 MiB chunks (no disk, no CPU)."""
    left = size
    while left > 0:
        n = min(CHUNK, left)
        yield _BLOCK[:n]
        left -= n


def file_chunks(path: Path) -> Callable[[], Iterator[bytes]]:
    """A source for ``Body``: the file at ``path`` in 1 MiB chunks."""

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    return chunks


def multipart_body(
    fields: dict[str, str], filename: str, source: Callable[[], Iterable[bytes]], size: int
) -> tuple[Body, str]:
    """Fields first, then one ``file`` part (as the Exporter sends it); and its Content-Type."""
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return Body(source, size, head, tail), f"multipart/form-data; boundary={boundary}"


def make_file(path: Path, size: int) -> str:
    """Incompressible test data (a random block varied per MiB); returns its MD5."""
    md5 = hashlib.md5(usedforsecurity=False)
    block = os.urandom(CHUNK)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        left, n = size, 0
        while left > 0:
            chunk = (n.to_bytes(8, "big") + block[8:])[: min(CHUNK, left)]
            out.write(chunk)
            md5.update(chunk)
            left -= len(chunk)
            n += 1
    return md5.hexdigest()


# -- /proc ---------------------------------------------------------------------------------
def hwm_kib(pid: int) -> int:
    """Peak resident memory (VmHWM) of ``pid`` so far, in KiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text)[1])


def peak_rss_kib(pids: list[int]) -> dict[int, int]:
    """VmHWM of each of ``pids`` that still runs."""
    out = {}
    for pid in pids:
        try:
            out[pid] = hwm_kib(pid)
        except (OSError, TypeError):
            continue
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (every thread), from /proc/<pid>/stat."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn's workers), from every /proc/*/stat."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def load_note() -> str:
    """The machine's load as the figures' context: load averages and busy processes now."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


# -- processes -----------------------------------------------------------------------------
def _spawn(cmd: list[str], env: dict[str, str], log: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),  # noqa: SIM115 - the child owns it
    )
    wait_for_port(port, timeout=60, proc=proc)
    return proc


def start_fake_zenodo(
    work: Path, token: str, *extra: str, root: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """``tests/support/fake_zenodo.py`` in its own process, accepting ``token``
    (``extra``: its options, e.g. ``--rate-limit 100 --rate-window 6`` or ``--fsync``)."""
    port = free_port()
    cmd = [sys.executable, "-m", "tests.support.fake_zenodo", "--port", str(port)]
    cmd += ["--root", str(root or work / "zenodo"), "--token", token, *extra]
    return _spawn(cmd, {}, work / "fake-zenodo.log", port), f"http://127.0.0.1:{port}"


WEBDAV_SERVER = """
import sys, time
from pathlib import Path
from tests.support.webdav import WebDAVServer
server = WebDAVServer(Path(sys.argv[1]), {"alice": (sys.argv[3], "pw")})
server.server.port = int(sys.argv[2])
server.server.url = f"http://127.0.0.1:{sys.argv[2]}"
server.start()
while True:
    time.sleep(3600)
"""


def start_webdav(root: Path, token: str, log: Path) -> tuple[subprocess.Popen, str]:
    """wsgidav over ``root`` (user ``alice``, Bearer ``token``) in its own process."""
    port = free_port()
    cmd = [sys.executable, "-c", WEBDAV_SERVER, str(root), str(port), token]
    return _spawn(cmd, {}, log, port), f"http://127.0.0.1:{port}"


def start_gunicorn(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """The connector as deployed: gunicorn, the image's config, ``--preload``."""
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    cmd = [str(gunicorn), "--config", "deploy/gunicorn_conf.py", "--preload"]
    cmd.append("local_router:create_app()")
    full = {"CONNECTOR_CONFIG": "", "LOGLEVEL": "WARNING", **env}
    full.update(HOST="127.0.0.1", PORT=str(port), GUNICORN_LOGLEVEL="warning")
    return _spawn(cmd, full, log, port), f"http://127.0.0.1:{port}"


def stop(*procs: subprocess.Popen) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def timed(method: str, url: str, **kw) -> tuple[float, requests.Response]:
    start = time.perf_counter()
    resp = requests.request(method, url, timeout=(10, 3600), **kw)
    return time.perf_counter() - start, resp


def write_section(section: str, body: str) -> None:
    """Replace (or append) the ``## section`` of docs/benchmarks.md with ``body``."""
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    heading = f"## {section}"
    if heading in text:
        start = text.index(heading)
        nxt = text.find("\n## ", start + len(heading))
        rest = text[nxt + 1 :] if nxt != -1 else ""
        text = text[:start] + body.rstrip() + ("\n\n" + rest if rest else "\n")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text)
