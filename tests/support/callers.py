"""The deployed RDS Layer-2 callers, played as they really call connectors.

Written from the facts in ``shared/reference/rds-protocol.md`` ("How the deployed callers
use this interface"), not from upstream code: each player makes the same requests in the
same order with the same identities, and reads the answers the way the deployed caller
does -- including the ways it breaks (a non-JSON answer or a missing ``success`` key is a
crash of the whole sync, which the player raises as ``CallerCrash``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

TIMEOUT = 120


class CallerCrash(Exception):
    """The deployed caller would have crashed here (its user sees a bare 500)."""


def session_form(service: str, user: str, token: str) -> str:
    """``port-<name>://<user>:<token>``, as ``RDS.Util.parseToken`` builds it."""
    return f"{service}://{user}:{token}"


@dataclass
class Port:
    """One port of a research: a connector's address, its service name, the user's token."""

    url: str
    service: str
    token: str

    def user_id(self, user: str) -> str:
        return session_form(self.service, user, self.token)


def _json(resp: requests.Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise CallerCrash(f"{what}: answer {resp.status_code} is not JSON") from None


def _get_bare_then_session(
    port: Port, path: str, body: dict[str, Any], user: str
) -> requests.Response:
    """The Exporter's storage calls: bare user first, on ANY answer >= 300 the session form."""
    resp = requests.get(port.url + path, json={**body, "userId": user}, timeout=TIMEOUT)
    if resp.status_code >= 300:
        resp = requests.get(
            port.url + path, json={**body, "userId": port.user_id(user)}, timeout=TIMEOUT
        )
    return resp


@dataclass
class SyncReport:
    """What the Exporter answers its caller after an active sync."""

    success: bool
    messages: list[Any] = field(default_factory=list)
    file_success: list[tuple[bool, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # the listing it worked from


class Exporter:
    """Layer 2's Exporter service: active sync (download, upload) and the passive trigger."""

    def __init__(self, user: str) -> None:
        self.user = user

    def list_folder(self, storage: Port, filepath: str) -> list[str]:
        """``GET /storage/folder``; a listing that fails twice leaves the service no files."""
        resp = _get_bare_then_session(
            storage, "/storage/folder", {"filepath": filepath.rstrip("/")}, self.user
        )
        if resp.status_code >= 300:
            return []
        return list(_json(resp, "folder listing")["files"])

    def active_sync(
        self, storage: Port, filepath: str, archive: Port, project_id: str
    ) -> SyncReport:
        """List once, then for each entry: download it, upload it under that same name."""
        folder = filepath.rstrip("/")
        files = self.list_folder(storage, folder)
        report = SyncReport(success=True, files=files)
        if any(f.endswith("/") for f in files):
            # the zip branch: with an archive that did not register fileTransferArchive the
            # results are thrown away and the sync reports success with nothing archived
            return report
        for entry in files:
            # as it builds it: an entry that starts with the folder is taken as a full path
            path = entry if entry.startswith(folder) else f"{folder}/{entry}"
            got = _get_bare_then_session(storage, "/storage/file", {"filepath": path}, self.user)
            content = got.content  # the Exporter does not check the retry's status
            answer = self.add_file(archive, project_id, entry, content)
            try:
                ok = bool(answer["success"])
                if not ok:
                    report.messages.append(answer["message"])
            except (KeyError, TypeError):
                raise CallerCrash(f"upload of {entry!r}: answer without success/message") from None
            report.file_success.append((ok, answer))
            report.success = report.success and ok
        return report

    def add_file(self, archive: Port, project_id: str, filename: str, content: bytes) -> Any:
        """One multipart upload: fields first, then ONE part named ``file``."""
        resp = requests.post(
            f"{archive.url}/metadata/project/{project_id}/files",
            data={
                "userId": archive.user_id(self.user),
                "filename": filename,
                "username": self.user,
            },
            files={"file": (filename, content)},
            timeout=TIMEOUT,
        )
        return _json(resp, f"upload of {filename!r}")

    def trigger_passive(
        self, archive: Port, project_id: str, storage_service: str, filepath: str
    ) -> requests.Response:
        """The passive trigger: a plain form; only the status is read (>= 300 is failure)."""
        resp = requests.post(
            f"{archive.url}/metadata/project/{project_id}/files",
            data={
                "folder": filepath.rstrip("/"),
                "service": storage_service,
                "username": self.user,
                "userId": archive.user_id(self.user),
            },
            timeout=TIMEOUT,
        )
        if resp.status_code >= 300:
            _json(resp, "passive trigger")  # it logs the JSON body; a non-JSON one raises
        return resp


class PortService:
    """Layer 2's Port service: creates, lists and deletes projects for the UI."""

    def __init__(self, user: str) -> None:
        self.user = user

    def create_project(self, archive: Port) -> str:
        resp = requests.post(
            f"{archive.url}/metadata/project",
            json={"userId": archive.user_id(self.user)},
            timeout=TIMEOUT,
        )
        if resp.status_code >= 300:
            raise CallerCrash(f"create answered {resp.status_code}")
        return str(_json(resp, "create").get("projectId"))  # str() of a missing id is "None"

    def list_projects(self, archive: Port) -> list[Any]:
        resp = requests.get(
            f"{archive.url}/metadata/project",
            json={"userId": archive.user_id(self.user)},
            timeout=TIMEOUT,
        )
        return _json(resp, "list") if resp.status_code < 300 else []

    def delete_project(self, archive: Port, project_id: str) -> bool:
        resp = requests.delete(
            f"{archive.url}/metadata/project/{project_id}",
            json={"userId": archive.user_id(self.user)},
            timeout=TIMEOUT,
        )
        return resp.status_code == 204  # success means exactly 204


class MetadataService:
    """Layer 2's Metadata service: imports the folder's crate, reads metadata, publishes."""

    def __init__(self, user: str) -> None:
        self.user = user

    def import_crate(self, storage: Port, filepath: str, archive: Port, project_id: str) -> Any:
        """GET the folder's ``ro-crate-metadata.json`` (session form, no status check) and
        PATCH it whole into the archive project; the answer is passed on as it came."""
        path = f"{filepath.rstrip('/')}/ro-crate-metadata.json"
        got = requests.get(
            storage.url + "/storage/file",
            json={"userId": storage.user_id(self.user), "filepath": path},
            timeout=TIMEOUT,
        )
        crate = _json(got, "crate download")
        patched = requests.patch(
            f"{archive.url}/metadata/project/{project_id}",
            json={"userId": archive.user_id(self.user), "metadata": crate},
            timeout=TIMEOUT,
        )
        return _json(patched, "crate import")

    def get_metadata(self, archive: Port, project_id: str) -> Any:
        resp = requests.get(
            f"{archive.url}/metadata/project/{project_id}",
            json={"userId": archive.user_id(self.user), "metadata": None},
            timeout=TIMEOUT,
        )
        return _json(resp, "metadata") if resp.status_code == 200 else {}

    def publish(self, archive: Port, project_id: str) -> str:
        """``PUT``: success is exactly 200 with JSON; the DOI is read from the key ``DOI``."""
        resp = requests.put(
            f"{archive.url}/metadata/project/{project_id}",
            json={"userId": archive.user_id(self.user)},
            timeout=TIMEOUT,
        )
        answer = _json(resp, "publish")
        if resp.status_code != 200:
            raise CallerCrash(f"publish answered {resp.status_code}: {answer}")
        try:
            return str(answer["DOI"])
        except KeyError:
            raise CallerCrash("publish answer has no DOI") from None
