"""The ``local`` backend: both interfaces on a folder, the connector's embedded default.

Layout under ``CONNECTOR_DATA_DIR``::

    projects/<user>/<project-id>/ro-crate-metadata.json   the crate
    projects/<user>/<project-id>/<relative path>          the files, folders kept
    projects/<user>/.state/<project-id>.json              published flag, DOI, checksums
    storage/<user>/<path>                                  the fileStorage tree
    <area>/<user>/.tmp/                                    uploads in flight

``<user>`` is the RDS user name percent-encoded, so users never share a folder and no
name can climb out of its own. Uploads stream into ``.tmp`` and are renamed into place
only when complete, so a broken upload never shows as a stored file. Publishing freezes a
project and mints an identifier under ``LOCAL_DOI_PREFIX`` (default ``10.5072``, DataCite's
test prefix: these identifiers resolve nowhere).

An upload whose process dies (worker killed, graceful timeout passed) leaves its ``.tmp``
file behind; ``TempSweeper`` removes those older than ``LOCAL_TEMP_MAX_AGE`` at start
(``login``) and then from the uploads themselves, at most once per ``LOCAL_SWEEP_INTERVAL``
for all the processes sharing the data folder (a marker file under ``flock``): no thread
of ours runs between requests, gunicorn's forked workers need none, and leftovers only
grow where uploads happen.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from common.backends.base import Json, LoginFailed, StorageBase, service_info, svg_icon
from common.backends.local_sweep import TEMP_DIR, TempSweeper
from common.config import Settings, load_declared, setting
from common.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
)
from common.identity import Identity
from common.metadata import check_crate, parse_json
from common.paths import archive_name, relative_path
from common.streams import CHUNK_SIZE, Download, Meter, Upload, iter_file

log = logging.getLogger("rds.local")
F = TypeVar("F", bound=Callable[..., Any])
CRATE_NAME = "ro-crate-metadata.json"
_PROJECT_ID = re.compile(r"^[a-f0-9]{16}$")
_ICON_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    b'<path d="M1 3h5l2 2h7v8H1z" fill="#4a7"/></svg>'
)
LOCAL_ICON = svg_icon(_ICON_SVG)


MAX_USER_DIR = 200


@dataclass(frozen=True)
class LocalSettings:
    """The local backend's variables, checked when it is built at start."""

    doi_prefix: str = setting("LOCAL_DOI_PREFIX", "text", "10.5072")
    #: a temp file untouched this long is a dead upload's: longer than any honest upload
    #: can be idle (a request body's idle timeout, CONNECTOR_READ_TIMEOUT of a passive pull)
    temp_max_age: int = setting("LOCAL_TEMP_MAX_AGE", "int", 3600, lo=60, hi=30 * 86400)
    sweep_interval: int = setting("LOCAL_SWEEP_INTERVAL", "int", 600, lo=1, hi=86400)


def user_dir(area: Path, user: str) -> Path:
    """The user's own folder in ``area``; the prefix keeps '.' and '..' harmless.

    A name whose encoding is over ``MAX_USER_DIR`` bytes (file systems stop at 255) gets a
    folder named by its SHA-256 instead; the other prefix keeps both kinds apart.
    """
    encoded = quote(user, safe="@+-_.")
    if len(encoded) > MAX_USER_DIR:
        return area / ("h-" + hashlib.sha256(encoded.encode("ascii")).hexdigest())
    return area / ("u-" + encoded)


def default_crate(name: str = "") -> Json:
    """A minimal RO-Crate 1.1 with an empty root dataset."""
    return {
        "@context": "https://w3id.org/ro/crate/1.1/context",
        "@graph": [
            {
                "@id": CRATE_NAME,
                "@type": "CreativeWork",
                "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
                "about": {"@id": "./"},
            },
            {"@id": "./", "@type": "Dataset", "name": name},
        ],
    }


def _write_atomic(target: Path, chunks: Iterator[bytes] | Any, tmp_dir: Path) -> int:
    """Stream ``chunks`` to a temp file in ``tmp_dir`` and rename it onto ``target``."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / uuid.uuid4().hex
    size = 0
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                size += len(chunk)
        _make_parents(target)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return size


def _make_parents(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise Conflict("a file stands where the path needs a folder", field="filename") from None
    if target.is_dir():
        raise Conflict("a folder already has this path", field="filename")


def _fs_errors(field: str) -> Callable[[F], F]:
    """Answer what the file system refuses for the caller's input as a problem, not a 500.

    A name can pass ``relative_path`` and still be too long once the data folder's own path
    is in front of it (``ENAMETOOLONG``); a full disk is the caller's 507, not our crash.
    """

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except OSError as exc:
                if exc.errno == errno.ENAMETOOLONG:
                    raise BadRequest(f"{field} is too long for this storage", field=field) from exc
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise InsufficientStorage("the connector's data folder is full") from exc
                raise

        return run  # type: ignore[return-value]

    return wrap


def _prune_empty(path: Path, stop: Path) -> None:
    """Remove empty folders from ``path`` up to (not including) ``stop``."""
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent


def _login_check(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise LoginFailed(f"data folder {root} is not writable ({exc.strerror})") from exc


class _LocalBase:
    needs_token = False
    AREA = ""  # the subfolder of the data folder this interface keeps its users in

    def __init__(
        self,
        data_dir: str | Path,
        doi_prefix: str = "10.5072",
        *,
        max_crate_bytes: int = 10 * 1024 * 1024,
        temp_max_age: float = 3600.0,
        sweep_interval: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(data_dir).resolve()
        self.doi_prefix = doi_prefix
        #: an uploaded ro-crate-metadata.json is the metadata, held in memory to parse it:
        #: the same limit as a PATCH body (CONNECTOR_MAX_JSON_BYTES)
        self.max_crate_bytes = max_crate_bytes
        self.sweeper = TempSweeper(self.root / self.AREA, temp_max_age, sweep_interval, clock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Any:
        own = load_declared(LocalSettings, settings)
        if own.temp_max_age <= settings.read_timeout:
            raise ConfigError(
                f"LOCAL_TEMP_MAX_AGE ({own.temp_max_age} s) must be longer than "
                f"CONNECTOR_READ_TIMEOUT ({settings.read_timeout:g} s): a temp file of a "
                "passive pull may be idle that long and must not be swept"
            )
        return cls(
            settings.data_dir,
            own.doi_prefix or "10.5072",
            max_crate_bytes=settings.max_json_bytes,
            temp_max_age=own.temp_max_age,
            sweep_interval=own.sweep_interval,
        )

    def login(self) -> None:
        """The data folder is writable; the temp files dead uploads left are swept."""
        _login_check(self.root)
        self.sweeper.sweep()

    def registration_fields(self) -> Json:
        return {"credentials": {"userId": True, "password": False}}

    def service_info(self) -> Json:
        return service_info(
            "Local folder",
            "Archive and storage in a folder of the connector's host (testing).",
            "Archiv und Speicher in einem Ordner des Connector-Hosts (Test).",
            LOCAL_ICON,
        )


class LocalArchive(_LocalBase):
    """Metadata interface on ``<data>/projects``."""

    max_files: int | None = None  # no cap: a passive pull never zips
    AREA = "projects"

    # -- layout ----------------------------------------------------------------------
    def _user(self, who: Identity) -> Path:
        return user_dir(self.root / "projects", who.user)

    def _state_path(self, who: Identity, project_id: str) -> Path:
        return self._user(who) / ".state" / f"{project_id}.json"

    def _project(self, who: Identity, project_id: str) -> tuple[Path, Json]:
        if not _PROJECT_ID.match(project_id):
            raise NotFound(f"no project {project_id!r}", field="projectId")
        state_path = self._state_path(who, project_id)
        try:
            state = json.loads(state_path.read_text("utf-8"))
        except FileNotFoundError:
            raise NotFound(f"no project {project_id!r}", field="projectId") from None
        return self._user(who) / project_id, state

    @contextmanager
    def _locked(self, who: Identity, project_id: str) -> Iterator[tuple[Path, Json]]:
        """Hold the project's lock while its state is read, changed and written back."""
        lock_path = self._user(who) / ".state" / f"{project_id}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            folder, state = self._project(who, project_id)
            yield folder, state
            if not state.get("deleted"):
                self._save_state(who, project_id, state)

    def _save_state(self, who: Identity, project_id: str, state: Json) -> None:
        path = self._state_path(who, project_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), "utf-8")
        os.replace(tmp, path)

    @staticmethod
    def _writable(state: Json) -> None:
        if state.get("published"):
            raise Conflict("the project is published and can no longer change", field="projectId")

    def _read_crate(self, folder: Path) -> Json:
        try:
            return json.loads((folder / CRATE_NAME).read_text("utf-8"))
        except FileNotFoundError:
            return default_crate()

    def _write_crate(self, who: Identity, folder: Path, metadata: Json) -> None:
        data = json.dumps(metadata, ensure_ascii=False, indent=1).encode("utf-8")
        _write_atomic(folder / CRATE_NAME, iter([data]), self._user(who) / TEMP_DIR)

    # -- projects ----------------------------------------------------------------------
    def list_projects(self, who: Identity) -> list[Json]:
        state_dir = self._user(who) / ".state"
        out = []
        for state_file in sorted(state_dir.glob("*.json")) if state_dir.is_dir() else []:
            project_id = state_file.stem
            try:
                folder, _ = self._project(who, project_id)
                out.append({"projectId": project_id, "metadata": self._read_crate(folder)})
            except (NotFound, FileNotFoundError):
                continue  # deleted while we listed: it is simply no longer there
        return out

    def create_project(
        self, who: Identity, metadata: Json | None, *, idempotency_key: str | None = None
    ) -> Json:
        """A new project; ``idempotency_key`` is accepted and not needed (a local create
        cannot lose its answer to an outside service)."""
        project_id = secrets.token_hex(8)
        folder = self._user(who) / project_id
        folder.mkdir(parents=True)
        crate = metadata if metadata is not None else default_crate()
        self._write_crate(who, folder, crate)
        state: Json = {"created": time.time(), "published": False, "doi": None, "files": {}}
        (self._user(who) / ".state").mkdir(exist_ok=True)
        self._save_state(who, project_id, state)
        return {"projectId": project_id, "metadata": crate}

    def get_project(self, who: Identity, project_id: str) -> Json:
        folder, _ = self._project(who, project_id)
        return self._read_crate(folder)

    def update_project(self, who: Identity, project_id: str, metadata: Json | None) -> Json:
        with self._locked(who, project_id) as (folder, state):
            if metadata is None:
                return self._read_crate(folder)
            self._writable(state)
            self._write_crate(who, folder, metadata)
            return metadata

    def publish_project(self, who: Identity, project_id: str) -> str:
        with self._locked(who, project_id) as (_, state):
            if not state.get("published"):
                state["published"] = True
                state["doi"] = f"{self.doi_prefix}/rds.local.{project_id}"
            return str(state["doi"])

    def delete_project(self, who: Identity, project_id: str) -> None:
        with self._locked(who, project_id) as (folder, state):
            self._writable(state)
            shutil.rmtree(folder, ignore_errors=True)
            self._state_path(who, project_id).unlink()
            state["deleted"] = True
        (self._user(who) / ".state" / f"{project_id}.lock").unlink(missing_ok=True)

    # -- files -------------------------------------------------------------------------
    @staticmethod
    def _entry(path: str, info: Json) -> Json:
        return {
            "id": path,
            "filename": path,
            "size": info["size"],
            "checksum": f"md5:{info['md5']}",
        }

    def list_files(self, who: Identity, project_id: str) -> list[Json]:
        _, state = self._project(who, project_id)
        return [self._entry(p, i) for p, i in sorted(state["files"].items())]

    @_fs_errors("filename")
    def store_file(self, who: Identity, project_id: str, upload: Upload) -> Json:
        name = relative_path(upload.filename, "filename")
        folder, state = self._project(who, project_id)
        self._writable(state)
        if name == CRATE_NAME:
            return self._store_crate(who, project_id, upload)
        self.sweeper.maybe()
        tmp_dir = self._user(who) / TEMP_DIR
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / uuid.uuid4().hex
        meter = upload.meter()
        try:
            with open(tmp, "wb") as out:
                for chunk in meter:
                    out.write(chunk)
            with self._locked(who, project_id) as (folder, state):
                self._writable(state)
                target = folder / name
                _make_parents(target)
                os.replace(tmp, target)
                state["files"][name] = {"size": meter.size, "md5": meter.md5}
        finally:
            tmp.unlink(missing_ok=True)
        return self._entry(name, state["files"][name])

    def _store_crate(self, who: Identity, project_id: str, upload: Upload) -> Json:
        """An uploaded ``ro-crate-metadata.json`` at the root IS the project's metadata."""
        data = bytearray()
        meter = upload.meter()
        for chunk in meter:
            data += chunk
            if len(data) > self.max_crate_bytes:
                raise PayloadTooLarge(
                    f"ro-crate-metadata.json is over {self.max_crate_bytes} bytes", field="file"
                )
        crate = parse_json(bytes(data), "file", "ro-crate-metadata.json")
        self.update_project(who, project_id, check_crate(crate, "file"))
        return {
            "id": CRATE_NAME,
            "filename": CRATE_NAME,
            "size": meter.size,
            "checksum": f"md5:{meter.md5}",
        }

    def _known(self, state: Json, file_id: str) -> str:
        name = relative_path(file_id, "fileId")
        if name not in state["files"]:
            raise NotFound(f"no file {file_id!r} in this project", field="fileId")
        return name

    def get_file(self, who: Identity, project_id: str, file_id: str) -> Json:
        _, state = self._project(who, project_id)
        name = self._known(state, file_id)
        return self._entry(name, state["files"][name])

    @_fs_errors("filename")
    def update_file(self, who: Identity, project_id: str, file_id: str, changes: Json) -> Json:
        new = changes.get("filename") or changes.get("newfilename")
        with self._locked(who, project_id) as (folder, state):
            name = self._known(state, file_id)
            self._writable(state)
            if new is None:
                return self._entry(name, state["files"][name])
            new = archive_name(new, "filename")
            if new == CRATE_NAME or new in state["files"]:
                raise Conflict(f"a file named {new!r} exists already", field="filename")
            target = folder / new
            _make_parents(target)
            os.replace(folder / name, target)
            _prune_empty((folder / name).parent, folder)
            state["files"][new] = state["files"].pop(name)
            return self._entry(new, state["files"][new])

    def delete_file(self, who: Identity, project_id: str, file_id: str) -> None:
        with self._locked(who, project_id) as (folder, state):
            name = self._known(state, file_id)
            self._writable(state)
            (folder / name).unlink(missing_ok=True)
            _prune_empty((folder / name).parent, folder)
            del state["files"][name]

    def delete_files(self, who: Identity, project_id: str) -> None:
        with self._locked(who, project_id) as (folder, state):
            self._writable(state)
            for name in list(state["files"]):
                (folder / name).unlink(missing_ok=True)
                _prune_empty((folder / name).parent, folder)
                del state["files"][name]

    def check_batch(
        self, who: Identity, project_id: str, entries: list[tuple[str, int | None]]
    ) -> None:
        """A folder holds any number and size of files: every batch fits."""


_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")  # 19 digits: any real offset


def _slice(fh: Any, start: int, length: int) -> Iterator[bytes]:
    fh.seek(start)
    left = length
    while left > 0:
        chunk = fh.read(min(CHUNK_SIZE, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


class LocalStorage(_LocalBase, StorageBase):
    """fileStorage interface on ``<data>/storage``."""

    AREA = "storage"

    def _root(self, who: Identity) -> Path:
        root = user_dir(self.root / "storage", who.user)
        root.mkdir(parents=True, exist_ok=True)
        return root

    def _existing(self, who: Identity, path: str) -> Path:
        if path.split("/", 1)[0] == ".tmp":  # uploads in flight: not the user's files
            raise NotFound(f"nothing at /{path}", field="filepath")
        target = self._root(who) / path if path else self._root(who)
        if not target.exists():
            raise NotFound(f"nothing at /{path}", field="filepath")
        return target

    @_fs_errors("filepath")
    def list_folder(self, who: Identity, path: str) -> list[str]:
        target = self._existing(who, path)
        if not target.is_dir():
            return []
        prefix = f"/{path}/" if path else "/"
        out = []
        for child in sorted(target.iterdir(), key=lambda p: p.name):
            if child.name == ".tmp" and not path:
                continue  # uploads in flight (see _existing)
            out.append(prefix + child.name + ("/" if child.is_dir() else ""))
        return out

    @_fs_errors("filepath")
    def _open(self, who: Identity, path: str, byte_range: str | None) -> Download:
        target = self._existing(who, path)
        if target.is_dir():
            raise BadRequest(f"/{path} is a folder", field="filepath")
        size = target.stat().st_size
        m = _RANGE.match(byte_range or "")
        fh = open(target, "rb")  # noqa: SIM115 - closed by the answer when it ends
        if m and (m[1] or m[2]) and size:
            if m[1]:
                start = int(m[1])
                end = min(int(m[2]), size - 1) if m[2] else size - 1
            else:
                start, end = max(size - int(m[2]), 0), size - 1
            if start < size and start <= end:
                length = end - start + 1
                return Download(
                    _slice(fh, start, length),
                    length,
                    status=206,
                    content_range=f"bytes {start}-{end}/{size}",
                    filename=target.name,
                    close=fh.close,
                )
        return Download(iter_file(fh), size, filename=target.name, close=fh.close)

    def in_flight(self, path: str) -> bool:
        return path.split("/", 1)[0] == ".tmp"

    @_fs_errors("filepath")
    def _store(self, who: Identity, path: str, upload: Upload) -> Meter:
        self.sweeper.maybe()
        root = self._root(who)
        meter = upload.meter()
        _write_atomic(root / path, meter, root / TEMP_DIR)
        return meter

    @_fs_errors("filepath")
    def _move(self, who: Identity, path: str, new_path: str) -> None:
        source = self._existing(who, path)
        target = self._root(who) / new_path
        if target.exists():
            raise Conflict(f"/{new_path} exists already", field="newfilepath")
        _make_parents(target)
        os.replace(source, target)

    @_fs_errors("filepath")
    def _delete(self, who: Identity, path: str) -> None:
        target = self._existing(who, path)
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
