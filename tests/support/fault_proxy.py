"""A fault-injecting HTTP proxy on loopback, in front of a real test server.

Boundary: raw sockets between the backend under test and a real upstream (the fake Zenodo,
wsgidav, moto). Requests pass through unchanged (``Host`` included, so links and WebDAV
``Destination`` headers stay on the proxy) unless a rule matches; a rule answers with a
fault instead, ``times`` times. It works below HTTP on purpose: a connection reset in the
middle of a body or a server that accepts and never answers cannot be played by a WSGI app.

Faults (``action``):
- ``status``: answer ``status`` with ``headers`` and ``body`` (the request body is read
  first, as a server does, so the client sees the answer and not a broken pipe);
- ``reset``: pass the head and the first ``after`` body bytes upstream and end the request
  there (the upstream sees a request broken off midway), wait until the upstream is done
  with it, then reset the client; a request without a body is reset before it reaches the
  upstream. The wait puts the two in one order: the server has finished the broken request
  (and left whatever it leaves) before the client can react to the reset. Without it the
  client's clean-up raced the server's handling of the same request, and either could win
  (the flaky ``[upload-reset]`` case of ``test_faults_storage.py``); a server slower than
  the clean-up is played by rules on the clean-up's own requests instead;
- ``hang``: accept the request, never answer (until the client gives up or ``stop``);
- ``garbage``: answer 200 with an HTML page where JSON/XML is expected;
- ``cut``: pass the request, relay the answer's head and ``after`` body bytes, then reset;
- ``lose``: pass the whole request, let the upstream finish it, drop its answer (reset).

``seen`` records ``(method, path, action)`` of every request: the attempts a server saw.
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.support.servers import free_port

UPSTREAM_DONE_TIMEOUT = 10.0  # a bound, never reached by the servers under test
HTML = b"<html><body><h1>Gateway says hello</h1><br></body></html>"  # neither JSON nor XML


@dataclass
class Rule:
    action: str
    method: str | None = None
    path: str | None = None
    times: int = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"message": "injected"}'
    after: int = 0


def _reset(sock: socket.socket) -> None:
    """Close with RST (linger 0), the way a crashed peer or a middlebox drops a connection."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Conn:
    """One client connection: its head parsed, its body readable as raw bytes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def read_head(self) -> bytes | None:
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head + b"\r\n\r\n"

    def body(self, headers: dict[str, str]) -> Iterator[bytes]:
        """The raw body bytes (Content-Length, or chunked up to its last chunk)."""
        if "chunked" in headers.get("transfer-encoding", ""):
            data = self.buf
            self.buf = b""
            while True:
                if data:
                    yield data
                tail = data[-5:] if len(data) >= 5 else data
                if tail.endswith(b"0\r\n\r\n"):
                    return
                data = self.sock.recv(65536)
                if not data:
                    return
        left = int(headers.get("content-length") or 0)
        data, self.buf = self.buf[:left], self.buf[left:]
        while True:
            if data:
                left -= len(data)
                yield data
            if left <= 0:
                return
            data = self.sock.recv(min(left, 65536))
            if not data:
                return


class FaultProxy:
    """``FaultProxy(upstream_port).start()``; ``inject(...)`` rules; ``stop()`` at the end."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rules: list[Rule] = []
        self.seen: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    def inject(self, action: str, **kw: object) -> None:
        """Add a rule (see the module docstring); ``path`` is a regex searched in the path."""
        with self.lock:
            self.rules.append(Rule(action, **kw))  # type: ignore[arg-type]

    def attempts(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests (faulted or passed) matched ``method`` and the ``path`` regex."""
        return sum(
            1
            for m, p, _ in self.seen
            if (method is None or m == method) and (path is None or re.search(path, p))
        )

    def _take(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.method and rule.method != method:
                    continue
                if rule.path and not re.search(rule.path, path):
                    continue
                rule.times -= 1
                if rule.times <= 0:
                    self.rules.remove(rule)
                return rule
        return None

    # -- one connection -------------------------------------------------------------------
    def _handle(self, sock: socket.socket) -> None:
        conn = _Conn(sock)
        try:
            while self._one(conn):
                pass
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _one(self, conn: _Conn) -> bool:
        """Serve one request; True if the client connection stays open for another."""
        head = conn.read_head()
        if head is None:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ")[:2]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        path = target.split("?", 1)[0]
        rule = self._take(method, path)
        with self.lock:
            self.seen.append((method, path, rule.action if rule else "pass"))
        if rule is not None and rule.action == "hang":
            self.released.wait(30)
            return False
        if "100-continue" in headers.get("expect", "").lower():
            # answer for the upstream (its own 100 is not relayed): botocore waits for it
            conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            head = re.sub(rb"(?im)^expect:[^\r\n]*\r\n", b"", head)
        if rule is None or rule.action in ("cut", "lose"):
            self._forward(conn, head, headers, rule)
            return False
        if rule.action == "reset":
            self._forward_part(conn, head, headers, rule.after)
            return False
        for _ in conn.body(headers):
            pass
        if rule.action == "garbage":
            rule = Rule("status", status=200, body=HTML, headers={"Content-Type": "text/html"})
        self._answer(conn.sock, rule)
        return True

    @staticmethod
    def _answer(sock: socket.socket, rule: Rule) -> None:
        headers = {"Content-Type": "application/json", **rule.headers}
        headers["Content-Length"] = str(len(rule.body))
        lines = [f"HTTP/1.1 {rule.status} Injected"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + rule.body)

    def _upstream_head(self, head: bytes) -> bytes:
        """The head as sent upstream: one request per connection, so the answer ends at EOF."""
        text = re.sub(rb"(?im)^connection:[^\r\n]*\r\n", b"", head)
        return text[:-2] + b"Connection: close\r\n\r\n"

    def _forward_part(self, conn: _Conn, head: bytes, headers: dict[str, str], limit: int) -> None:
        chunked = "chunked" in headers.get("transfer-encoding", "")
        if not chunked and not int(headers.get("content-length") or 0):
            _reset(conn.sock)  # no body to break off: the request never reaches the upstream
            return
        up = socket.create_connection(self.upstream)
        try:
            up.sendall(self._upstream_head(head))
            sent = 0
            for data in conn.body(headers):
                take = data[: max(0, limit - sent)]
                up.sendall(take)
                sent += len(take)
                if sent >= limit:
                    break
            # The upstream reads the end of the request mid-body (as from a client that died)
            # and answers or closes; only then does the client learn of the reset.
            up.shutdown(socket.SHUT_WR)
            up.settimeout(UPSTREAM_DONE_TIMEOUT)
            with contextlib.suppress(OSError):
                while up.recv(65536):
                    pass
        finally:
            _reset(up)
            _reset(conn.sock)

    def _forward(
        self, conn: _Conn, head: bytes, headers: dict[str, str], rule: Rule | None
    ) -> None:
        up = socket.create_connection(self.upstream)
        try:
            up.sendall(self._upstream_head(head))
            for data in conn.body(headers):
                up.sendall(data)
            if rule is not None and rule.action == "lose":
                while up.recv(65536):  # the upstream finishes the request, the answer is lost
                    pass
                _reset(conn.sock)
                return
            self._relay(up, conn.sock, rule.after if rule is not None else None)
        finally:
            up.close()

    @staticmethod
    def _relay(up: socket.socket, client: socket.socket, cut: int | None) -> None:
        """Copy the answer to the client; with ``cut``, reset after that many body bytes.

        Bytes go on as they come; before the reset the client gets a moment to read what
        was sent (an RST makes the receiver drop data it has not read yet).
        """
        head: bytes | None = b""
        body_left = cut
        while True:
            data = up.recv(65536)
            if not data:
                break
            if head is not None:
                head += data
                if b"\r\n\r\n" not in head:
                    continue
                head_part, data = head.split(b"\r\n\r\n", 1)
                # the client must not pool this connection: the proxy closes it
                head_part = re.sub(rb"(?im)\r\nconnection:[^\r\n]*", b"", head_part)
                client.sendall(head_part + b"\r\nConnection: close\r\n\r\n")
                head = None
            if body_left is None:
                client.sendall(data)
                continue
            take = data[:body_left]
            client.sendall(take)
            body_left -= len(take)
            if body_left <= 0:
                break
        if cut is None:
            client.shutdown(socket.SHUT_WR)
            return
        time.sleep(0.1)
        _reset(client)
