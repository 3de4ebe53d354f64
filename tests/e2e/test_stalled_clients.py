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
    store_file(base, user, "honest/kept.bin", content)
    got = requests.get(
        f"{base}/storage/file", json={"userId": user, "filepath": "honest/kept.bin"}, timeout=60
    )
    assert got.status_code == 200 and got.content == content
    return expected


def store_file(base: str, user: str, path: str, content: bytes) -> None:
    """POST /storage/file, which must answer 200."""
    put = requests.post(
        f"{base}/storage/file",
        data={"userId": user, "filepath": path},
        files={"file": (path.rsplit("/", 1)[-1], content)},
        timeout=120,
    )
    assert put.status_code == 200, put.text


SEND_IDLE = 2  # CONNECTOR_SEND_IDLE_TIMEOUT for the download test
BIG = 48 * 1024 * 1024  # far more than loopback's socket buffers hold


def download_request(port: int, user: str) -> socket.socket:
    """A GET /storage/file sent by hand on a socket with a small receive buffer; nothing is
    read yet."""
    body = json.dumps({"userId": user, "filepath": "big.bin"}).encode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        f"GET /storage/file HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    return sock


def read_answer(sock: socket.socket, pauses: int = 0) -> tuple[bytes, bytes]:
    """Head and body until the server closes; with ``pauses``, stop reading for less than
    the send bound that many times, 4 MiB apart."""
    out = bytearray()
    mark = 4 * 1024 * 1024
    try:
        while chunk := sock.recv(1024 * 1024):
            out += chunk
            if pauses and len(out) >= mark:
                pauses -= 1
                mark += 4 * 1024 * 1024
                threading.Event().wait(SEND_IDLE / 2)
    except ConnectionResetError:
        pass
    head, _, body = bytes(out).partition(b"\r\n\r\n")
    return head, body


@pytest.mark.slow
def test_a_download_nobody_reads_is_cut_after_the_send_idle_timeout(tmp_path) -> None:
    """A client that asks for a large file and stops reading holds its connection (and the
    open file behind it) for ``CONNECTOR_SEND_IDLE_TIMEOUT``, not for ever: under the
    image's own start command its connection is closed with the file part-sent, and the
    cut is logged; a reader that pauses for less than the bound gets every byte."""
    cmd, image_env, _workdir = image_spec()
    port = free_port()
    env = run_env(
        image_env,
        port,
        tmp_path / "data",
        CENTRAL_SERVICE_TOKEN_STORAGE="",
        USE_CASE_SERVICE_PORT_SERVICE="",
        CONNECTOR_SEND_IDLE_TIMEOUT=str(SEND_IDLE),
    )
    user = uid()
    content = hashlib.sha256(b"big").digest() * (BIG // 32)
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w+b") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, timeout=60, proc=proc)
            store_file(f"http://127.0.0.1:{port}", user, "big.bin", content)

            stalled = download_request(port, user)
            threading.Event().wait(SEND_IDLE * 3)  # read nothing, well past the bound
            head, body = read_answer(stalled)
            stalled.close()
            assert head.startswith(b"HTTP/1.1 200"), head[:100]
            assert f"Content-Length: {BIG}".encode() in head
            assert 0 < len(body) < BIG  # cut short: the server hung up
            assert body == content[: len(body)]

            pausing = download_request(port, user)
            head, body = read_answer(pausing, pauses=3)
            pausing.close()
            assert head.startswith(b"HTTP/1.1 200") and body == content
        finally:
            proc.terminate()
            proc.wait(60)
    text = log_path.read_text(errors="replace")
    assert "answer.unfinished function=storage_file_get" in text
    assert "Closing connection after a send timed out" in text
    assert "Traceback" not in text  # gunicorn's socket-error traceback became that line
