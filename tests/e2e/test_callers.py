"""Caller contract: the deployed RDS Layer-2 callers' call sequences against our routers.

Three router processes: B serves ``webdav`` storage (a real wsgidav), A the ``zenodo``
archive (the fake Zenodo), C the ``local`` archive. The players in
``tests/support/callers.py`` call them the way the Exporter, the Port service and the
Metadata service do (bare user first on storage calls, the session form on archives, each
listing entry used unchanged as path suffix and as ``filename``, ``success`` read from
every upload answer). A fileStorage double that lists exactly like port_owncloud (and one
that answers the bare form with 500, as the deployed one does) is the source of passive
pulls. Every test asserts what the caller would report and what the archive holds, byte
for byte.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, jsonify, request

from common.backends.zenodo import to_key
from tests.support.callers import Exporter, MetadataService, Port, PortService
from tests.support.crates import crate
from tests.support.fake_zenodo import FakeZenodo
from tests.support.servers import RouterProcess, ServerThread, router_process
from tests.support.token_storage import TokenStorageDouble
from tests.support.webdav import WebDAVServer

USER = "alice@cloud.example.org"
ZEN_TOKEN = "tok-zen-callers"
DAV_TOKEN = "tok-dav-callers"
DOUBLE_TOKEN = "tok-double-callers"
LOCAL_TOKEN = "tok-local-callers"
STORAGE = "port-owncloud-b"
FOLDER = "/Forschung/Boden 2026"
CRATE = crate(
    {
        "name": "Bodenproben 2026",
        "description": "Gemessen im Feld.",
        "creator": {"@id": "#mm"},
        "license": {"@id": "https://spdx.org/licenses/CC-BY-4.0"},
    },
    {"@id": "#mm", "@type": "Person", "familyName": "Mustermann", "givenName": "Max"},
)
GOOD = {
    "raw/2026/a.csv": b"depth,ph\n" + b"1,7\n" * 500,
    "raw/b b.bin": os.urandom(3 * 1024 * 1024 + 7),
    "Übersicht/naïve 文件 (1).txt": "grüße".encode(),
    "deep/er/still/x.dat": os.urandom(70_000),
    "top.txt": b"top",
    "ro-crate-metadata.json": json.dumps(CRATE).encode(),
}
EMPTY = "leer/empty.dat"
FILES = {**GOOD, EMPTY: b""}


def storage_double(files: dict[str, bytes], tokens: dict[str, str]) -> Flask:
    """fileStorage connectors at ``/<service>/storage/...``, listing like the real ones.

    ``port-owncloud-like``: recursive, relative, files only (bare user accepted);
    ``port-owncloud-real``: the same, but the bare form is a 500, as the deployed one answers;
    ``port-yml``: the interface document's form (absolute, one level, folders with '/').
    """
    app = Flask("storage_double")
    app.config["seen"] = []

    def who(service: str) -> Response | None:
        user_id = (request.get_json(silent=True) or {}).get("userId", "")
        app.config["seen"].append(
            (service, request.path, "session" if "://" in user_id else "bare")
        )
        if "://" not in user_id:
            if service == "port-owncloud-real":
                return Response("UnboundLocalError", status=500)
            return None if user_id == USER else Response(status=401)
        if user_id != f"{service}://{USER}:{tokens[service]}":
            return Response(status=401)
        return None

    def inside(path: str) -> str | None:
        path = "/" + path.strip("/") if path.strip("/") else ""
        return path

    @app.get("/<service>/storage/folder")
    def folder(service: str) -> Any:
        refused = who(service)
        if refused is not None:
            return refused
        base = inside(request.get_json()["filepath"])
        below = {
            n[len(base) + 1 :]: n for n in (f"/{k}" for k in files) if n.startswith(base + "/")
        }
        if not below:
            return Response(status=404)
        if service != "port-yml":
            return jsonify({"files": sorted(below)})
        children = {f"{base}/{rel.split('/', 1)[0]}" + ("/" if "/" in rel else "") for rel in below}
        return jsonify({"files": sorted(children)})

    @app.get("/<service>/storage/file")
    def file(service: str) -> Any:
        refused = who(service)
        if refused is not None:
            return refused
        name = inside(request.get_json()["filepath"]).lstrip("/")
        if name not in files:
            return Response(status=404)
        return Response(files[name], content_type="application/octet-stream")

    return app


@dataclass
class Setup:
    tmp: Path
    dav: WebDAVServer
    fake: FakeZenodo
    ts: TokenStorageDouble
    double: Flask
    storage: Port  # B: our webdav connector
    zenodo: Port  # A
    local: Port  # C
    processes: tuple[RouterProcess, ...]

    def put_folder(self, folder: str, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            target = self.dav.root / "alice" / folder.strip("/") / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def local_file(self, project_id: str, name: str) -> bytes:
        return (
            next((self.tmp / "c" / "projects").glob("u-*"), Path())
            .joinpath(project_id, name)
            .read_bytes()
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("callers")
    dav = WebDAVServer(tmp / "dav", {"alice": (DAV_TOKEN, "app-pass")}).start()
    fake = FakeZenodo(tmp / "zenodo")
    fake.add_token(ZEN_TOKEN)
    doubles = {s: DOUBLE_TOKEN for s in ("port-owncloud-like", "port-owncloud-real", "port-yml")}
    ts = TokenStorageDouble()
    ts.tokens[(USER, STORAGE)] = DAV_TOKEN
    for service, token in doubles.items():
        ts.tokens[(USER, service)] = token
    double = storage_double({f"Forschung/Boden 2026/{n}": d for n, d in GOOD.items()}, doubles)
    servers = [ServerThread(app).start() for app in (fake.app, ts.app, double)]
    fake_url, ts_url, double_url = (s.url for s in servers)
    common = {"CONNECTOR_CONFIG": "", "USE_CASE_SERVICE_PORT_SERVICE": ts_url}
    b_env = {
        **common,
        "CONNECTOR_DATA_DIR": str(tmp / "b"),
        "CONNECTOR_METADATA": "none",
        "CONNECTOR_STORAGE": "webdav",
        "CONNECTOR_SERVICENAME": STORAGE,
        "EFSS_SYSTEM": "owncloud",
        "OWNCLOUD_INSTALLATION_URL": dav.url,
        "OWNCLOUD_OAUTH_CLIENT_ID": "oc-client",
        "OWNCLOUD_OAUTH_CLIENT_SECRET": "oc-secret-callers",
    }
    a_env = {
        **common,
        "CONNECTOR_DATA_DIR": str(tmp / "a"),
        "CONNECTOR_METADATA": "zenodo",
        "CONNECTOR_STORAGE": "none",
        "ZENODO_ADDRESS": fake_url,
        "ZENODO_OAUTH_CLIENT_ID": "cid",
        "ZENODO_OAUTH_CLIENT_SECRET": "csecret-callers",
        "RDS_OAUTH_REDIRECT_URI": "https://rds.example/redirect",
        "PASSIVE_STORAGE_URL_TEMPLATE": double_url + "/{service}",
    }
    c_env = {
        **common,
        "CONNECTOR_DATA_DIR": str(tmp / "c"),
        "CONNECTOR_METADATA": "local",
        "CONNECTOR_STORAGE": "none",
    }
    try:
        with router_process(b_env) as b, router_process(a_env) as a, router_process(c_env) as c:
            yield Setup(
                tmp,
                dav,
                fake,
                ts,
                double,
                Port(b.url, STORAGE, DAV_TOKEN),
                Port(a.url, "port-zenodo", ZEN_TOKEN),
                Port(c.url, "port-local", LOCAL_TOKEN),
                (a, b, c),
            )
    finally:
        for server in (*servers, dav):
            server.stop()
        fake.close()


def test_the_exporter_sees_every_file_of_a_nested_folder_as_port_owncloud_lists_it(
    setup: Setup,
) -> None:
    folder = FOLDER + "/listing"
    setup.put_folder(folder, FILES)
    (setup.dav.root / "alice" / folder.strip("/") / "empty folder").mkdir()
    listed = Exporter(USER).list_folder(setup.storage, folder)
    assert listed == sorted(FILES)  # recursive, relative, files only: no folder entries
    assert not any(name.startswith("/") or name.endswith("/") for name in listed)


def test_active_sync_into_zenodo_archives_every_good_file_and_reports_the_refused_one(
    setup: Setup,
) -> None:
    folder = FOLDER + "/zenodo"
    setup.put_folder(folder, FILES)
    pid = PortService(USER).create_project(setup.zenodo)
    assert pid.isdigit()  # a string, never "None"
    imported = MetadataService(USER).import_crate(setup.storage, folder, setup.zenodo, pid)
    assert isinstance(imported, dict) and "@graph" in imported

    report = Exporter(USER).active_sync(setup.storage, folder, setup.zenodo, pid)

    assert report.files == sorted(FILES)
    assert report.success is False  # the 0-byte file, which Zenodo refuses
    assert len(report.messages) == 1 and EMPTY in report.messages[0]
    refused = next(answer for ok, answer in report.file_success if not ok)
    assert refused["status"] == 422 and refused["field"] in ("file", "filename")
    assert refused["files"] == [{"filename": EMPTY, "status": "failed", "error": refused["detail"]}]
    record = setup.fake.depositions[int(pid)]
    assert sorted(record.files) == sorted(to_key(n) for n in GOOD)
    for name, data in GOOD.items():
        assert setup.fake.file_bytes(int(pid), to_key(name)) == data
    metadata = record.metadata
    assert metadata["title"] == "Bodenproben 2026"
    assert metadata["creators"] == [{"name": "Mustermann, Max"}]

    doi = MetadataService(USER).publish(setup.zenodo, pid)
    assert doi == f"10.5072/zenodo.{pid}"
    listed = PortService(USER).list_projects(setup.zenodo)
    assert pid in [str(p["projectId"]) for p in listed]


def test_active_sync_into_the_local_archive_keeps_every_byte_and_name(setup: Setup) -> None:
    folder = FOLDER + "/local"
    setup.put_folder(folder, FILES)
    pid = PortService(USER).create_project(setup.local)
    MetadataService(USER).import_crate(setup.storage, folder, setup.local, pid)

    report = Exporter(USER).active_sync(setup.storage, folder, setup.local, pid)

    assert report.success is True and report.messages == []
    assert [ok for ok, _ in report.file_success] == [True] * len(FILES)
    for name, data in FILES.items():
        if name == "ro-crate-metadata.json":  # the local archive keeps it as the metadata
            assert json.loads(setup.local_file(pid, name)) == CRATE
            continue
        assert setup.local_file(pid, name) == data
    metadata = MetadataService(USER).get_metadata(setup.local, pid)
    root = next(e for e in metadata["@graph"] if e["@id"] == "./")
    assert root["name"] == "Bodenproben 2026"
    assert MetadataService(USER).publish(setup.local, pid).startswith("10.5072/")


def test_the_storage_root_as_the_exporter_sends_it(setup: Setup) -> None:
    """The Exporter strips the trailing '/', so the user's root is ``filepath: ""``, and
    each entry then starts with "" and is used as the whole path."""
    report = Exporter(USER).active_sync(setup.storage, "/", setup.local, "0" * 16)
    assert report.files and all(not f.startswith("/") for f in report.files)
    assert report.success is False  # no such project: every answer says so, none crashes
    assert all(ok is False and a["status"] == 404 for ok, a in report.file_success)


@pytest.mark.parametrize("service", ["port-owncloud-like", "port-owncloud-real", "port-yml"])
def test_a_passive_pull_archives_every_file_whatever_the_storage_lists(
    setup: Setup, service: str
) -> None:
    pid = PortService(USER).create_project(setup.zenodo)
    resp = Exporter(USER).trigger_passive(setup.zenodo, pid, service, FOLDER + "/")
    assert resp.status_code == 200, resp.text
    assert resp.json()["counts"] == {"stored": len(GOOD), "skipped": 0, "failed": 0}
    for name, data in GOOD.items():
        assert setup.fake.file_bytes(int(pid), to_key(name)) == data
    seen = [(path, form) for s, path, form in setup.double.config["seen"] if s == service]
    if service == "port-owncloud-real":
        # bare first, a 500, then the session form with the token from the Port service
        assert seen[:2] == [
            (f"/{service}/storage/folder", "bare"),
            (f"/{service}/storage/folder", "session"),
        ]
        assert {form for _, form in seen[2:]} == {"session"}
    setup.double.config["seen"].clear()


def test_a_project_delete_is_exactly_204(setup: Setup) -> None:
    for archive in (setup.zenodo, setup.local):
        pid = PortService(USER).create_project(archive)
        assert PortService(USER).delete_project(archive, pid) is True
        assert pid not in [str(p["projectId"]) for p in PortService(USER).list_projects(archive)]


def test_no_secret_reaches_a_log(setup: Setup) -> None:
    logs = "".join(p.log() for p in setup.processes)
    for secret in (ZEN_TOKEN, DAV_TOKEN, DOUBLE_TOKEN, "csecret-callers", "oc-secret-callers"):
        assert secret not in logs


def test_every_field_the_callers_read_is_there_with_its_type(setup: Setup) -> None:
    """``projectId`` a string (the Port service str()s it: a number would do, None would
    become "None"), ``metadata`` in list entries, ``success``/``files`` on uploads, ``DOI``."""
    import requests

    for archive in (setup.zenodo, setup.local):
        who = {"userId": archive.user_id(USER)}
        created = requests.post(f"{archive.url}/metadata/project", json=who, timeout=30).json()
        assert isinstance(created["projectId"], str) and created["projectId"]
        assert isinstance(created["metadata"], dict)
        listed = requests.get(f"{archive.url}/metadata/project", json=who, timeout=30).json()
        assert all(isinstance(p["projectId"], str) for p in listed)
        assert all(isinstance(p["metadata"], dict) for p in listed)
        pid = created["projectId"]
        answer = Exporter(USER).add_file(archive, pid, "/a/b.txt", b"bytes")
        assert answer["success"] is True and answer["files"][0]["filename"] == "a/b.txt"
        files = requests.get(f"{archive.url}/metadata/project/{pid}/files", json=who, timeout=30)
        assert [f["filename"] for f in files.json()] == ["a/b.txt"]
        requests.patch(
            f"{archive.url}/metadata/project/{pid}", json={**who, "metadata": CRATE}, timeout=30
        )
        assert MetadataService(USER).publish(archive, pid)
