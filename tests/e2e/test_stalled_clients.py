"""Clients that stall cost a bounded amount: the image's own start command under 200 of them.

The start command, its ENV and the worker model are read from the Dockerfile
(``tests/support/image.py``), so this is the server the image runs. 150 clients send their
headers, their form fields and the first 256 KiB of a file, then nothing; 50 send half of their
headers, then nothing. While all 200 hold their connections, honest uploads, listings,
downloads and ``/healthz`` are answered, and every stalled socket is checked to be still
unanswered afterwards (the honest work was done beside them, not after them). Then each
stalled upload gets its 408 problem naming ``file`` (or its connection closed) once
``CONNECTOR_BODY_IDLE_TIMEOUT`` has passed, and nothing of it is stored.

Time is bounded by the test's own socket and request timeouts; nothing asserts a speed.
"""

from __future__ import annotations

import hashlib
import json
import select
import socket
import subprocess
import threading

import pytest
import requests

from tests.conftest import uid
from tests.support.image import image_spec, run_env
from tests.support.servers import ROOT, free_port, wait_for_port

IDLE = 15  # CONNECTOR_BODY_IDLE_TIMEOUT: well past the honest work below on a busy machine
STALLED_UPLOADS = 150
STALLED_HEADERS = 50
BOUNDARY = "stall0boundary"


def stalled_upload(port: int, pid: str, n: int) -> socket.socket:
    """Headers, form fields and the file part's first 256 KiB of a 10 MiB upload (some reach
    the local backend's temp file: gunicorn hands the body up in whole reads); then silence."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="userId"\r\n\r\n{uid()}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="filename"\r\n\r\nstalled-{n}.bin\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="stalled-{n}.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + b"s" * (256 * 1024 + 1)
    length = len(head) + 10 * 1024 * 1024
    request = (
        f"POST /metadata/project/{pid}/files HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(request + head)
    return sock


def stalled_headers(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /metadata/project HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
    return sock


def unanswered(sock: socket.socket) -> bool:
    """Nothing to read yet: no answer and no close (a closed socket reads as readable)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (bounded by the socket's timeout)."""
    sock.settimeout(IDLE + 60)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except ConnectionResetError:
        pass
    return out


@pytest.mark.slow
def test_200_stalled_clients_leave_uploads_listings_and_healthz_served(tmp_path) -> None:
    cmd, image_env, _workdir = image_spec()
    port = free_port()
    data = tmp_path / "data"
    env = run_env(
        image_env,
        port,
        data,
        CENTRAL_SERVICE_TOKEN_STORAGE="",
        USE_CASE_SERVICE_PORT_SERVICE="",
        CONNECTOR_BODY_IDLE_TIMEOUT=str(IDLE),
    )
    log_path = tmp_path / "gunicorn.log"
    base = f"http://127.0.0.1:{port}"
    stalled: list[socket.socket] = []
    half: list[socket.socket] = []
    with open(log_path, "w+b") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, timeout=60, proc=proc)
            s = requests.Session()
            pid = s.post(f"{base}/metadata/project", json={"userId": uid()}, timeout=60).json()[
                "projectId"
            ]
            stalled = [stalled_upload(port, pid, n) for n in range(STALLED_UPLOADS)]
            half = [stalled_headers(port) for _ in range(STALLED_HEADERS)]

            honest = honest_work(base, pid)

            still = [sock for sock in stalled + half if unanswered(sock)]
            assert len(still) == len(stalled) + len(half), (
                "stalled clients were answered before the honest work was done: "
                f"{len(still)} of {len(stalled) + len(half)} still waiting"
            )

            answers = [answer_of(sock) for sock in stalled]
            timed_out = [a for a in answers if a.startswith(b"HTTP/1.1 408 ")]
            assert all(a == b"" or a.startswith(b"HTTP/1.1 408 ") for a in answers), {
                a[:12] for a in answers
            }
            assert timed_out, "no stalled upload got its 408"
            for answer in timed_out:
                assert b"application/problem+json" in answer
                problem = json.loads(answer.split(b"\r\n\r\n", 1)[1])
                assert problem["field"] == "file"
                assert problem["notStored"] == [problem["files"][0]["filename"]]

            listed = s.get(
                f"{base}/metadata/project/{pid}/files", json={"userId": uid()}, timeout=60
            )
            assert {f["filename"] for f in listed.json()} == set(honest)
            assert requests.get(f"{base}/healthz", timeout=30).json()["status"] == "ok"
        finally:
            for sock in stalled + half:
                sock.close()
            proc.terminate()
            proc.wait(60)
    assert not [p for p in data.rglob("*") if "stalled" in p.name]
    assert not [p for p in data.rglob("*") if p.is_file() and ".tmp" in p.parts]
    assert proc.returncode == 0, log_path.read_text()[-3000:]


def honest_work(base: str, pid: str) -> dict[str, str]:
    """Uploads (one of 16 MiB while /healthz is asked beside it), a listing with the MD5s, a
    storage upload and download; every answer must be right. Returns the stored names and their MD5s."""
    user = uid()
    sent = {f"honest/{n}.bin": bytes([n]) * (1000 * (n + 1)) for n in range(3)}
    big = b"B" * (16 * 1024 * 1024)
    sent["honest/big.bin"] = big
    results: dict[str, int] = {}

    def upload(name: str, content: bytes) -> None:
        resp = requests.post(
            f"{base}/metadata/project/{pid}/files",
            data={"userId": user, "filename": name},
            files={"file": (name.rsplit("/", 1)[-1], content)},
            timeout=60,
        )
        results[name] = resp.status_code

    beside = threading.Thread(target=upload, args=("honest/big.bin", big))
    beside.start()
    for _ in range(5):
        probe = requests.get(f"{base}/healthz", timeout=30)
        assert probe.status_code == 200 and probe.json()["status"] == "ok"
    for name, content in sent.items():
        if name != "honest/big.bin":
            upload(name, content)
    beside.join(60)
    assert results == dict.fromkeys(sent, 200)

    listed = requests.get(f"{base}/metadata/project/{pid}/files", json={"userId": user}, timeout=60)
    assert listed.status_code == 200
    md5s = {f["filename"]: f["checksum"] for f in listed.json()}
    expected = {name: "md5:" + hashlib.md5(content).hexdigest() for name, content in sent.items()}
    assert md5s == expected
    content = b"storage bytes" * 10_000
    put = requests.post(
        f"{base}/storage/file",
        data={"userId": user, "filepath": "honest/kept.bin"},
        files={"file": ("kept.bin", content)},
        timeout=60,
    )
    assert put.status_code == 200, put.text
    got = requests.get(
        f"{base}/storage/file", json={"userId": user, "filepath": "honest/kept.bin"}, timeout=60
    )
    assert got.status_code == 200 and got.content == content
    return expected
