"""Push a local folder through a running connector's metadata API, as RDS Layer 2 does.

For operators (a smoke test after a deploy) and researchers without an RDS installation:
create or reuse a project (Port service: ``POST /metadata/project``), send the crate whole
(Metadata service: ``PATCH`` with the folder's ``ro-crate-metadata.json``), upload every
file with its relative path (Exporter: multipart, fields first, ONE part ``file``), then
optionally publish (``PUT``, the DOI from the key ``DOI``). A file already in the project
with the same size and MD5 is skipped, so a rerun resumes where one broke off.

Files stream from disk: the multipart body is a file-like object of known length that
reads the file in chunks as the socket takes them, so memory stays flat whatever the size.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote

import requests

CHUNK = 1024 * 1024
CRATE_NAME = "ro-crate-metadata.json"


class PushError(Exception):
    """The connector refused a step that the whole push depends on (create, PATCH, list)."""


@dataclass
class Entry:
    """One local file: its name in the project (relative, ``/``-separated) and where it is."""

    name: str
    path: Path
    size: int
    status: str = "pending"  # stored | skipped | failed
    error: str | None = None


@dataclass
class Result:
    project_id: str
    files: list[Entry] = field(default_factory=list)
    doi: str | None = None
    submitted: bool = False  # published into a community's review instead of at once

    @property
    def ok(self) -> bool:
        return all(e.status in ("stored", "skipped") for e in self.files)


def plan(folder: Path) -> list[Entry]:
    """Every regular file below ``folder``, sorted by name; links and special files skipped."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(folder).as_posix()
            entries.append(Entry(rel, path, path.stat().st_size))
    return sorted(entries, key=lambda e: e.name)


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class MultipartFile:
    """A ``multipart/form-data`` body of known length that streams one file from disk.

    requests sends a file-like object with ``__len__`` with that ``Content-Length`` and
    reads it block by block, so the connector gets the exact size it needs (Zenodo
    requires a ``Content-Length``) and nothing is held in memory.
    """

    def __init__(self, fields: dict[str, str], filename: str, fh: Readable, size: int) -> None:
        self.boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
            + v.encode("utf-8")
            + b"\r\n"
            for k, v in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f"filename*=utf-8''{quote(filename, safe='')}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._pieces: list[Any] = [head, fh, f"\r\n--{self.boundary}--\r\n".encode()]
        self._length = len(head) + size + len(self._pieces[2])
        self._buffer = b""

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def read(self, n: int = -1) -> bytes:
        n = CHUNK if n is None or n < 0 else n
        while len(self._buffer) < n and self._pieces:
            piece = self._pieces[0]
            if isinstance(piece, bytes):
                self._buffer += piece
                self._pieces.pop(0)
                continue
            chunk = piece.read(n)
            if chunk:
                self._buffer += chunk
            else:
                self._pieces.pop(0)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ConnectorClient:
    """The metadata API of one connector, called the way RDS Layer 2 calls it."""

    def __init__(
        self, base_url: str, user_id: str, *, session: requests.Session | None = None
    ) -> None:
        self.base = base_url.rstrip("/") + "/metadata/project"
        self.user_id = user_id
        # the session form's user is what stands between '://' and the last ':'; a bare
        # userId is the user whole (a cloud id may hold ':' in its host part)
        self.username = (
            user_id.split("://", 1)[1].rsplit(":", 1)[0] if "://" in user_id else user_id
        )
        self.session = session or requests.Session()

    def _json(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        resp = self.session.request(
            method, url, json={"userId": self.user_id, **(body or {})}, timeout=(10, 600)
        )
        answer = _answer(resp)
        if resp.status_code >= 300:
            raise PushError(f"{method} {url} answered {resp.status_code}: {_detail(answer)}")
        return answer

    def create_project(self) -> str:
        return str(self._json("POST", self.base)["projectId"])

    def update_metadata(self, project_id: str, crate: dict[str, Any]) -> None:
        self._json("PATCH", f"{self.base}/{project_id}", {"metadata": crate})

    def get_metadata(self, project_id: str) -> Any:
        return self._json("GET", f"{self.base}/{project_id}")

    def list_files(self, project_id: str) -> dict[str, dict[str, Any]]:
        return {f["filename"]: f for f in self._json("GET", f"{self.base}/{project_id}/files")}

    def publish(self, project_id: str) -> Any:
        """The publish answer: ``DOI`` (``None`` while a community reviews the record)."""
        return self._json("PUT", f"{self.base}/{project_id}")

    def upload(self, project_id: str, entry: Entry, progress: Callable[[int], None]) -> None:
        """One file, fields first, then the part ``file``; raises ``PushError`` on refusal."""
        fields = {"userId": self.user_id, "filename": entry.name, "username": self.username}
        with open(entry.path, "rb") as fh:
            body = MultipartFile(fields, entry.name, _Counting(fh, progress), entry.size)
            resp = self.session.post(
                f"{self.base}/{project_id}/files",
                data=body,
                headers={"Content-Type": body.content_type},
                timeout=(10, 600),
            )
        answer = _answer(resp)
        if resp.status_code >= 300 or not (isinstance(answer, dict) and answer.get("success")):
            raise PushError(f"{resp.status_code}: {_detail(answer)}")


class _Counting:
    """A file whose reads are reported (bytes) to the progress display."""

    def __init__(self, fh: BinaryIO, progress: Callable[[int], None]) -> None:
        self.fh = fh
        self.progress = progress

    def read(self, n: int = -1) -> bytes:
        chunk = self.fh.read(n)
        self.progress(len(chunk))
        return chunk


def _answer(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return {"detail": resp.text[:200]}


def _detail(answer: Any) -> str:
    if isinstance(answer, dict):
        return str(answer.get("detail") or answer.get("message") or answer)[:500]
    return str(answer)[:500]


def load_crate(path: Path) -> dict[str, Any]:
    try:
        crate = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise PushError(f"{path} is not a readable JSON file ({exc.__class__.__name__})") from exc
    if not isinstance(crate, dict):
        raise PushError(f"{path} does not hold a JSON object")
    return crate


def push(
    client: ConnectorClient,
    folder: Path,
    *,
    project_id: str | None = None,
    crate_path: Path | None = None,
    publish: bool = False,
    on_file: Callable[[Entry], None] = lambda e: None,
    on_bytes: Callable[[int], None] = lambda n: None,
) -> Result:
    """Send ``folder`` into a (new or given) project; each file's fate is in the result."""
    entries = plan(folder)
    pid = project_id or client.create_project()
    crate_file = crate_path or (folder / CRATE_NAME)
    crate = load_crate(crate_file) if crate_file.is_file() else None
    if crate is not None:
        client.update_metadata(pid, crate)
    present = client.list_files(pid)
    result = Result(pid, entries)
    for entry in entries:
        if _already_there(client, pid, entry, present.get(entry.name), crate):
            entry.status = "skipped"
            on_bytes(entry.size)
        else:
            try:
                client.upload(pid, entry, on_bytes)
                entry.status = "stored"
            except (PushError, requests.RequestException, OSError) as exc:
                entry.status, entry.error = "failed", _reason(exc)
        on_file(entry)
    if publish and result.ok:
        answer = client.publish(pid)
        result.doi = answer.get("DOI") if isinstance(answer, dict) else None
        result.submitted = bool(isinstance(answer, dict) and answer.get("submitted"))
    return result


def _already_there(
    client: ConnectorClient,
    pid: str,
    entry: Entry,
    known: dict[str, Any] | None,
    crate: dict[str, Any] | None,
) -> bool:
    """Same size and MD5 in the project; or the crate, which an archive that keeps it as
    the project's metadata (``local``) does not list as a file but answers on GET."""
    if known is not None:
        return (known.get("size"), known.get("checksum")) == (
            entry.size,
            f"md5:{md5_of(entry.path)}",
        )
    return crate is not None and entry.name == CRATE_NAME and client.get_metadata(pid) == crate


def _reason(exc: Exception) -> str:
    if isinstance(exc, PushError):
        return str(exc)
    return f"{exc.__class__.__name__} (the connection or the file broke)"


def iter_report(result: Result) -> Iterator[str]:
    """The per-file report, one line each, then the summary."""
    for e in result.files:
        line = f"{e.status:8} {e.name}  ({e.size} bytes)"
        yield line + (f"  -- {e.error}" if e.error else "")
    counts = {s: sum(e.status == s for e in result.files) for s in ("stored", "skipped", "failed")}
    yield (
        f"project {result.project_id}: {counts['stored']} stored, {counts['skipped']} skipped, "
        f"{counts['failed']} failed"
    )
    if result.doi:
        yield f"DOI {result.doi}"
    elif result.submitted:
        yield "submitted for review: the DOI comes when the community accepts the record"
