"""A real router process killed mid-upload leaves its temp file; the next start sweeps it.

The kill is SIGKILL (what a worker gets when gunicorn's graceful timeout has passed, or the
OOM killer): no ``finally`` runs. The time that passes between the kill and a restart is
played by moving the file's mtime back, as the process cannot be given a clock.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from common.backends.local import user_dir
from tests.support.servers import router_process

USER = "alice"
SIZE = 10 * 1024 * 1024
SENT = 1024 * 1024


def upload_head(port: int) -> tuple[bytes, bytes]:
    """The head and the multipart body's start of a ``SIZE``-byte upload (fields first)."""
    boundary = "leftover-boundary"
    fields = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("userId", USER), ("filepath", "/big.bin"))
    )
    start = (
        fields + f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    end = f"\r\n--{boundary}--\r\n".encode()
    head = (
        f"POST /storage/file HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(start) + SIZE + len(end)}\r\n\r\n"
    ).encode()
    return head, start


def wait_for_temp(tmp: Path, size: int, deadline: float = 20.0) -> Path:
    """The upload's temp file once it holds ``size`` bytes (the router writes as it reads)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for path in tmp.glob("*") if tmp.is_dir() else []:
            if path.stat().st_size >= size:
                return path
        time.sleep(0.02)
    raise AssertionError(f"no temp file of {size} bytes in {tmp}")


def test_a_killed_uploads_temp_file_is_swept_at_the_next_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"CONNECTOR_CONFIG": "", "CONNECTOR_DATA_DIR": str(data), "LOCAL_TEMP_MAX_AGE": "3600"}
    tmp = user_dir(data / "storage", USER) / ".tmp"
    with router_process(env) as router, socket.create_connection(("127.0.0.1", router.port)) as s:
        head, start = upload_head(router.port)
        s.sendall(head + start + os.urandom(SENT))
        dead = wait_for_temp(tmp, SENT // 2)
        router.proc.kill()
        router.proc.wait(10)
    assert dead.exists(), "the kill left the temp file (the leftover this sweeps)"
    two_hours_ago = time.time() - 7200
    os.utime(dead, (two_hours_ago, two_hours_ago))
    live = tmp / "another-upload-in-flight"  # e.g. another pod on the same volume
    live.write_bytes(b"x" * 1000)

    with router_process(env) as router:  # the port is bound only after init's sweep
        assert router.get("/healthz").status_code == 200
        assert not dead.exists()
        assert live.exists()
    assert "local.swept area=storage files=1 bytes=" in router.log()
