"""A faithful fake of Zenodo's classic deposition API and bucket API, for loopback tests.

It enforces what real Zenodo enforces where a connector can tell (see
../shared/reference/zenodo.md): a Bearer token on every call (401) and its scopes (403),
``Content-Type: application/json`` on JSON bodies (415), ``Content-Length`` on bucket PUTs
(a chunked body is refused), no multipart on bucket PUTs (422), a minimum file size of 1
(400), at most 100 files per record, the required metadata and at least one file on
publish (400 in Zenodo's ``errors`` shape, or InvenioRDM's ``messages`` shape on demand),
MD5 checksums in every file answer, 201/202/204 as Zenodo uses them, and any status (429
with ``Retry-After``, 5xx) injected on demand. For races: ``lose_answer`` does a request's
work and then drops the connection unanswered; ``hold_store`` keeps a PUT's body
unstored until an event is set (Zenodo finishing after the client gave up). Uploads stream to disk in 1 MiB chunks:
nothing holds a body in memory, so a benchmark can send gigabytes.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request

from tests.support import fake_common as common
from tests.support.fake_common import CHUNK, MAX_FILES, Fault, host_url, resolved
from tests.support.fake_common import error as _err
from tests.support.fake_common import json_response as _json

WRITE, ACTIONS = "deposit:write", "deposit:actions"
UPLOAD_TYPES = {
    "publication",
    "poster",
    "presentation",
    "dataset",
    "image",
    "video",
    "software",
    "lesson",
    "physicalobject",
    "other",
}
ACCESS = {"open", "embargoed", "restricted", "closed"}
REQUIRED = ("upload_type", "publication_date", "title", "creators", "description", "access_right")


@dataclass
class StoredFile:
    key: str
    size: int
    md5: str
    path: Path
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Deposition:
    id: int
    owner: str
    bucket: str
    metadata: dict[str, Any] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    submitted: bool = False
    doi: str | None = None


class FakeZenodo(common.FaultInjection):
    """The fake's state plus its Flask app (``self.app``); thread-safe for a threaded server."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="fake-zenodo-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.tokens: dict[str, set[str]] = {}
        self.owners: dict[str, str] = {}
        self.depositions: dict[int, Deposition] = {}
        self.buckets: dict[str, int] = {}
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.delete_status = 204
        self.error_shape = "classic"  # or "invenio": errors[].messages
        self.corrupt_next_upload = False
        self.quota = 50 * 1000**3
        # Zenodo's rate limit (per token, fixed windows): None = unlimited. Every answer then
        # carries X-RateLimit-Limit/Remaining/Reset; past the limit a 429 with Retry-After
        # is answered before the body is read, and the refused request changes nothing.
        self.rate_limit: int | None = None
        self.rate_window = 60.0
        self.clock = time.time
        self.refused_429 = 0
        # races (issue 13): answers dropped after the work is done, stores held back
        self.lose: list[Fault] = []  # matching requests are done, then the connection drops
        self.hold_store: threading.Event | None = None  # a PUT's store waits for this
        self.stored_event = threading.Event()  # set after every stored PUT
        self.holds: list[tuple[str, str, threading.Event]] = []  # (method, path, release)
        self.fsync = False  # benchmarks: every stored file reaches the disk before the answer
        self._windows: dict[str, tuple[float, int]] = {}
        self._ids = itertools.count(1001)
        self.lock = threading.Lock()
        self.app = self._build()

    # -- test controls -----------------------------------------------------------------
    def add_token(
        self, token: str, scopes: tuple[str, ...] = (WRITE, ACTIONS), *, user: str | None = None
    ) -> None:
        """Accept ``token`` for ``user`` (default: a user of its own) with ``scopes``."""
        self.tokens[token] = set(scopes)
        self.owners[token] = user or token

    def lose_answer(self, *, method: str, path: str, times: int = 1) -> None:
        """Do the next ``times`` matching requests, then drop the connection unanswered."""
        with self.lock:
            self.lose.append(Fault(0, method, path, times, {}, None))

    def hold(self, *, method: str, path: str) -> threading.Event:
        """Hold the next matching request (before its work) until the event is set."""
        release = threading.Event()
        with self.lock:
            self.holds.append((method, path, release))
        return release

    def file_bytes(self, dep_id: int, key: str) -> bytes:
        return self.depositions[dep_id].files[key].path.read_bytes()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------
    def _dep_json(self, dep: Deposition) -> dict[str, Any]:
        base = f"{host_url()}/api/deposit/depositions/{dep.id}"
        links = {
            "self": base,
            "html": f"{host_url()}/deposit/{dep.id}",
            "files": f"{base}/files",
            "publish": f"{base}/actions/publish",
            "edit": f"{base}/actions/edit",
            "discard": f"{base}/actions/discard",
        }
        if not dep.submitted:
            links["bucket"] = f"{host_url()}/api/files/{dep.bucket}"
        out: dict[str, Any] = {
            "id": dep.id,
            "record_id": dep.id,
            "conceptrecid": str(dep.id - 1),
            "state": "done" if dep.submitted else "unsubmitted",
            "submitted": dep.submitted,
            "title": dep.metadata.get("title", ""),
            "metadata": {
                **dep.metadata,
                "prereserve_doi": {"doi": f"10.5072/zenodo.{dep.id}", "recid": dep.id},
            },
            "files": [self._classic_file(f) for f in list(dep.files.values())],
            "links": links,
            "owner": 1,
        }
        if dep.doi:
            out["doi"] = dep.doi
            out["doi_url"] = f"https://doi.org/{dep.doi}"
            out["metadata"]["doi"] = dep.doi
        return out

    @staticmethod
    def _classic_file(f: StoredFile) -> dict[str, Any]:
        return {"id": f.id, "filename": f.key, "filesize": f.size, "checksum": f.md5}

    def _object_json(self, bucket: str, f: StoredFile) -> dict[str, Any]:
        return {
            "key": f.key,
            "size": f.size,
            "checksum": f"md5:{f.md5}",
            "mimetype": "application/octet-stream",
            "version_id": f.id,
            "links": {"self": f"{host_url()}/api/files/{bucket}/{f.key}"},
        }

    def _errors(self, pairs: list[tuple[str, str]], message: str = "Validation error.") -> Response:
        if self.error_shape == "invenio":
            errors = [{"field": f, "messages": [m]} for f, m in pairs]
        else:
            errors = [{"field": f, "message": m} for f, m in pairs]
        return _err(400, message, errors=errors)

    def _mine(self, dep_id: int) -> Deposition | Response:
        dep = self.depositions.get(dep_id)
        if dep is None or dep.owner != request.environ["fake.user"]:
            return _err(404, "PID does not exist.")
        return dep

    def _bucket_dep(self, bucket: str) -> Deposition | Response:
        dep_id = self.buckets.get(bucket)
        if dep_id is None:
            return _err(404, "Bucket does not exist.")
        return self._mine(dep_id)

    # -- the app -----------------------------------------------------------------------
    def _build(self) -> Flask:
        app = Flask("fake_zenodo")
        self._guards(app)
        self._deposition_routes(app)
        self._file_routes(app)
        return app

    def _guards(self, app: Flask) -> None:
        @app.get("/_fake/stats")
        def _stats() -> Response:  # for benchmarks running the fake in its own process
            return jsonify(requests=len(self.requests), refused_429=self.refused_429)

        @app.before_request
        def _check() -> Response | None:
            if request.path == "/_fake/stats":
                return None
            self.requests.append(common.request_log())
            limited = self._rate_limited()
            if limited is not None:
                return limited
            with self.lock:
                held = next(
                    (
                        h
                        for h in self.holds
                        if h[0] == request.method and re.search(h[1], request.path)
                    ),
                    None,
                )
                if held is not None:
                    self.holds.remove(held)
            if held is not None:
                held[2].wait(30)
            injected = self._injected()
            if injected is not None:
                return injected
            auth = request.headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else None
            if token is None or token not in self.tokens:
                return _err(401, "The server could not verify that you are authorized.")
            request.environ["fake.user"] = self.owners[token]
            need = ACTIONS if "/actions/" in request.path else WRITE
            if need not in self.tokens[token]:
                return _err(403, "You don't have the permission to access the requested resource.")
            json_route = request.method in ("POST", "PUT") and request.path.startswith("/api/dep")
            if json_route and request.get_data() and request.mimetype != "application/json":
                return _err(415, "Unsupported media type.")
            return None

        @app.after_request
        def _rate_headers(resp: Response) -> Response:
            resp.headers.update(request.environ.get("fake.rate_headers", {}))
            if resp.status_code < 300 and self._take(self.lose) is not None:
                sock = request.environ.get("werkzeug.socket")
                if sock is not None:  # the work is done; the answer never leaves
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
            return resp

    def _rate_limited(self) -> Response | None:
        """Count the request in its token's window; a 429 (body unread) past the limit."""
        auth = request.headers.get("Authorization", "")
        if self.rate_limit is None or not auth.startswith("Bearer "):
            return None
        limit, now = self.rate_limit, self.clock()
        with self.lock:  # Zenodo's windows are aligned to the clock
            start = now - now % self.rate_window
            begun, used, allowed = common.count_in_window(self._windows, auth, start, limit)
            self.refused_429 += not allowed
        reset = begun + self.rate_window
        headers = common.rate_headers(limit, limit - used, reset, now, allowed)
        request.environ["fake.rate_headers"] = headers  # Retry-After too, on a refusal
        # the body stays unread (the server then closes the connection)
        return None if allowed else _err(429, "Too many requests.")

    def _deposition_routes(self, app: Flask) -> None:
        @app.get("/api/deposit/depositions")
        def _list() -> Response:
            page = int(request.args.get("page", 1))
            size = min(int(request.args.get("size", 10)), 100)
            mine = [d for d in self.depositions.values() if d.owner == request.environ["fake.user"]]
            status = request.args.get("status")
            if status in ("draft", "published"):
                mine = [d for d in mine if d.submitted == (status == "published")]
            mine.sort(key=lambda d: -d.id)
            return jsonify([self._dep_json(d) for d in mine[(page - 1) * size : page * size]])

        @app.post("/api/deposit/depositions")
        def _create() -> Response:
            body = request.get_json(silent=True) or {}
            metadata = body.get("metadata") or {}
            problems = _type_errors(metadata)
            if problems:
                return self._errors(problems)
            with self.lock:
                dep = Deposition(next(self._ids), request.environ["fake.user"], uuid.uuid4().hex)
                dep.metadata = dict(metadata)
                self.depositions[dep.id] = dep
                self.buckets[dep.bucket] = dep.id
            return _json(self._dep_json(dep), 201)

        @app.get("/api/deposit/depositions/<int:dep_id>")
        @resolved(self._mine)
        def _get(dep: Deposition) -> Response:
            return jsonify(self._dep_json(dep))

        @app.put("/api/deposit/depositions/<int:dep_id>")
        @resolved(self._mine)
        def _update(dep: Deposition) -> Response:
            if dep.submitted:
                return _err(400, "Deposition is not editable; use actions/edit first.")
            metadata = (request.get_json(silent=True) or {}).get("metadata") or {}
            problems = _type_errors(metadata)
            if problems:
                return self._errors(problems)
            dep.metadata = dict(metadata)
            return jsonify(self._dep_json(dep))

        @app.delete("/api/deposit/depositions/<int:dep_id>")
        @resolved(self._mine)
        def _delete(dep: Deposition) -> Response:
            if dep.submitted:
                return _err(403, "You cannot delete a published deposition.")
            with self.lock:
                for f in list(dep.files.values()):
                    f.path.unlink(missing_ok=True)
                del self.depositions[dep.id]
            return Response(status=self.delete_status)

        @app.post("/api/deposit/depositions/<int:dep_id>/actions/publish")
        @resolved(self._mine)
        def _publish(dep: Deposition) -> Response:
            if dep.submitted:
                return _err(400, "Deposition is already published.")
            problems = _publish_errors(dep.metadata)
            if not dep.files:
                problems.append(("files", "Minimum one file must be provided."))
            if problems:
                return self._errors(problems)
            dep.submitted = True
            dep.doi = f"10.5072/zenodo.{dep.id}"
            return _json(self._dep_json(dep), 202)

    def _file_routes(self, app: Flask) -> None:
        @app.get("/api/deposit/depositions/<int:dep_id>/files")
        @resolved(self._mine)
        def _classic_list(dep: Deposition) -> Response:
            return jsonify([self._classic_file(f) for f in list(dep.files.values())])

        @app.put("/api/deposit/depositions/<int:dep_id>/files/<file_id>")
        @resolved(self._mine)
        def _classic_rename(dep: Deposition, file_id: str) -> Response:
            if dep.submitted:
                return _err(403, "Files of a published deposition cannot change.")
            new = (request.get_json(silent=True) or {}).get("filename")
            found = next((f for f in list(dep.files.values()) if f.id == file_id), None)
            if found is None:
                return _err(404, "File does not exist.")
            if not isinstance(new, str) or not new or new in dep.files:
                return self._errors([("filename", "Invalid or existing filename.")])
            with self.lock:
                del dep.files[found.key]
                found.key = new
                dep.files[new] = found
            return jsonify(self._classic_file(found))

        @app.get("/api/files/<bucket>")
        @resolved(self._bucket_dep)
        def _bucket_list(dep: Deposition) -> Response:
            contents = [self._object_json(dep.bucket, f) for f in list(dep.files.values())]
            return jsonify({"contents": contents, "id": dep.bucket, "locked": dep.submitted})

        @app.get("/api/files/<bucket>/<path:key>")
        @resolved(self._bucket_dep)
        def _get_object(dep: Deposition, key: str) -> Response:
            found = dep.files.get(key)
            if found is None:
                return _err(404, "Object does not exist.")
            path = found.path

            def chunks() -> Any:
                with open(path, "rb") as src:
                    while chunk := src.read(CHUNK):
                        yield chunk

            resp = Response(chunks(), mimetype="application/octet-stream")
            resp.headers["Content-Length"] = str(found.size)
            return resp

        @app.put("/api/files/<bucket>/<path:key>")
        @resolved(self._bucket_dep)
        def _put(dep: Deposition, key: str) -> Response:
            refused = self._refuse_put(dep, key)
            if refused is not None:
                return refused
            return self._receive(dep, key, int(request.headers["Content-Length"]))

        @app.delete("/api/files/<bucket>/<path:key>")
        @resolved(self._bucket_dep)
        def _delete_object(dep: Deposition, key: str) -> Response:
            if dep.submitted:
                return _err(403, "Bucket is locked.")
            with self.lock:
                found = dep.files.pop(key, None)
            if found is None:
                return _err(404, "Object does not exist.")
            found.path.unlink(missing_ok=True)
            return Response(status=204)

    def _refuse_put(self, dep: Deposition, key: str) -> Response | None:
        """invenio-files-rest's checks, made before a byte of the body is read."""
        if dep.submitted:
            return _err(403, "Bucket is locked.")
        if request.mimetype.startswith("multipart/"):
            return _err(422, "Multipart form data is not accepted on the bucket API.")
        length = common.declared_length()
        if length is None:
            return _err(400, "Missing Content-Length header.")
        if int(length) < 1:
            return _err(400, "Content-Length: must be at least 1.")
        if key not in dep.files and len(dep.files) >= MAX_FILES:
            return _err(400, f"Bucket has reached its limit of {MAX_FILES} files.")
        used = sum(f.size for k, f in list(dep.files.items()) if k != key)
        if used + int(length) > self.quota:
            return _err(400, "Bucket quota exceeded.")
        return None

    def _receive(self, dep: Deposition, key: str, length: int) -> Response:
        target = self.root / uuid.uuid4().hex
        size, digest = common.store_stream(request.stream, target, fsync=self.fsync)
        if size != length:
            target.unlink(missing_ok=True)
            return _err(400, "Received fewer bytes than Content-Length.")
        held = self.hold_store
        if held is not None:  # a slow store: Zenodo finishes after the client gave up
            self.hold_store = None
            held.wait(30)
        if self.corrupt_next_upload:
            self.corrupt_next_upload = False
            digest = "0" * 32
        with self.lock:
            old = dep.files.get(key)
            stored = StoredFile(key, size, digest, target)
            dep.files[key] = stored
        if old is not None:
            old.path.unlink(missing_ok=True)
        self.stored_event.set()
        return _json(self._object_json(dep.bucket, stored), 201)


@contextlib.contextmanager
def serving(root: Path, *tokens: str) -> Iterator[FakeZenodo]:
    """A fake on a loopback server thread accepting ``tokens``; ``.url`` is its address."""
    from tests.support.servers import ServerThread

    fake = FakeZenodo(root)
    for token in tokens:
        fake.add_token(token)
    server = ServerThread(fake.app).start()
    fake.url = server.url  # type: ignore[attr-defined]
    try:
        yield fake
    finally:
        server.stop()
        fake.close()


def _type_errors(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """What Zenodo refuses already on create/update: values of the wrong kind."""
    out: list[tuple[str, str]] = []
    if "upload_type" in metadata and metadata["upload_type"] not in UPLOAD_TYPES:
        out.append(("metadata.upload_type", "Invalid upload type."))
    if "access_right" in metadata and metadata["access_right"] not in ACCESS:
        out.append(("metadata.access_right", "Invalid access right."))
    date = metadata.get("publication_date")
    if date is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(date)):
        out.append(("metadata.publication_date", "Not a valid date."))
    creators = metadata.get("creators")
    if creators is not None:
        if not isinstance(creators, list):
            out.append(("metadata.creators", "Not a valid list."))
        else:
            for i, creator in enumerate(creators):
                if not isinstance(creator, dict) or not creator.get("name"):
                    out.append((f"metadata.creators.{i}.name", "Missing data for required field."))
    return out


def _publish_errors(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    out = [
        (f"metadata.{name}", "Missing data for required field.")
        for name in REQUIRED
        if not metadata.get(name)
    ]
    if metadata.get("access_right") in ("open", "embargoed") and not metadata.get("license"):
        out.append(("metadata.license", "Missing data for required field."))
    return out + _type_errors(metadata)


def main(argv: list[str] | None = None) -> None:
    """Serve the fake alone (the benchmark runs it in its own process)."""
    import argparse

    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--token", action="append", default=[])
    parser.add_argument("--rate-limit", type=int, help="requests per window and token")
    parser.add_argument("--rate-window", type=float, default=60.0, help="seconds")
    parser.add_argument("--fsync", action="store_true", help="fsync every stored file")
    args = parser.parse_args(argv)
    fake = FakeZenodo(Path(args.root))
    fake.rate_limit, fake.rate_window, fake.fsync = args.rate_limit, args.rate_window, args.fsync
    for token in args.token:
        fake.add_token(token)
    make_server("127.0.0.1", args.port, fake.app, threaded=True).serve_forever()


if __name__ == "__main__":
    main()
