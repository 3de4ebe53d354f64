"""Passive transfer: the connector pulls a folder from a fileStorage service into a project."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest
from flask import Flask, Response, jsonify, request

from local_router import build_app
from tests.conftest import uid
from tests.support.servers import ServerThread, router_process

FILES = {
    "raw/2026/a.csv": b"depth,ph\n1,7\n",
    "raw/b b.bin": os.urandom(200_000),
    "Übersicht/naïve.txt": "ü".encode(),
    "top.txt": b"top",
}


def put_storage(client, path, data, user_id=None):
    resp = client.post(
        "/storage/file",
        data={"userId": user_id or uid(), "filepath": path, "file": (io.BytesIO(data), "f")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200, resp.json


def pull(client, pid, **form):
    data = {"userId": uid(), "username": "alice@cloud.example.org", **form}
    return client.post(f"/metadata/project/{pid}/files", data=data)


def project_files(client, pid):
    return {
        f["filename"]: f
        for f in client.get(f"/metadata/project/{pid}/files", json={"userId": uid()}).json
    }


def md5(data):
    return hashlib.md5(data).hexdigest()


def test_in_process_pull_stores_every_file_then_a_rerun_skips_them(client, data_dir) -> None:
    for name, data in FILES.items():
        put_storage(client, f"/research/{name}", data)
    put_storage(client, "/elsewhere/not-this.txt", b"no")
    pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]

    first = pull(client, pid, folder="/research", service="port-local")
    assert first.status_code == 200, first.json
    assert (
        first.json["counts"] == {"stored": len(FILES), "skipped": 0, "failed": 0}
        and first.json["failed"] == []
    )
    assert {f["filename"]: (f["size"], f["md5"], f["status"]) for f in first.json["files"]} == {
        n: (len(d), md5(d), "stored") for n, d in FILES.items()
    }
    got = project_files(client, pid)
    assert {n: f["checksum"] for n, f in got.items()} == {
        n: "md5:" + md5(d) for n, d in FILES.items()
    }
    folder = next((data_dir / "projects").glob("u-*")) / pid
    for name, data in FILES.items():
        assert (folder / name).read_bytes() == data

    again = pull(client, pid, folder="/research/", service="port-local")
    assert again.status_code == 200
    assert {f["status"] for f in again.json["files"]} == {"skipped"}
    assert again.json["counts"]["skipped"] == len(FILES)


def test_a_changed_source_file_is_transferred_again(client) -> None:
    put_storage(client, "/r/x.txt", b"one")
    pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
    assert pull(client, pid, folder="/r", service="port-local").status_code == 200
    put_storage(client, "/r/x.txt", b"two")  # same size, other bytes
    resp = pull(client, pid, folder="/r", service="port-local")
    assert [f["status"] for f in resp.json["files"]] == ["stored"]
    assert project_files(client, pid)["x.txt"]["checksum"] == "md5:" + md5(b"two")


def test_pull_over_http_from_another_connector(make_runtime, data_dir, tmp_path) -> None:
    storage_env = {
        "CONNECTOR_DATA_DIR": str(tmp_path / "storage-side"),
        "CONNECTOR_METADATA": "none",
        "CONNECTOR_SERVICENAME": "port-files",
        "CONNECTOR_CONFIG": "",
    }
    with router_process(storage_env) as storage:
        import requests

        for name, data in FILES.items():
            resp = requests.post(
                f"{storage.url}/storage/file",
                timeout=30,
                data={"userId": "alice@cloud.example.org", "filepath": f"/proj/{name}"},
                files={"file": ("f", data)},
            )
            assert resp.status_code == 200, resp.text
        client = build_app(
            make_runtime(CONNECTOR_STORAGE="none", PASSIVE_STORAGE_URL_TEMPLATE=storage.url)
        ).test_client()
        pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
        resp = pull(client, pid, folder="/proj", service="port-files")
        assert resp.status_code == 200, resp.json
        folder = next((data_dir / "projects").glob("u-*")) / pid
        for name, data in FILES.items():
            assert (folder / name).read_bytes() == data


def flaky_storage() -> Flask:
    """A fileStorage double whose 'broken.bin' stops half-way through its announced length."""
    app = Flask("flaky")
    files = {"/d/ok1.txt": b"ok-one", "/d/sub/ok2.txt": b"ok-two", "/d/broken.bin": b"x" * 100_000}

    @app.get("/storage/folder")
    def folder():
        path = request.get_json()["filepath"].rstrip("/")
        if path == "/d":
            return jsonify({"files": ["/d/ok1.txt", "/d/broken.bin", "/d/sub/"]})
        return jsonify({"files": ["/d/sub/ok2.txt"]})

    @app.get("/storage/file")
    def file():
        path = request.get_json()["filepath"]
        data = files[path]
        if path.endswith("broken.bin"):

            def cut():
                yield data[:40_000]
                raise ConnectionError("storage died")

            return Response(cut(), headers={"Content-Length": str(len(data))})
        return Response(data, content_type="application/octet-stream")

    return app


def test_a_file_that_fails_midway_is_reported_while_the_others_succeed(
    make_runtime, data_dir
) -> None:
    server = ServerThread(flaky_storage()).start()
    try:
        client = build_app(make_runtime(PASSIVE_STORAGE_URL_TEMPLATE=server.url)).test_client()
        pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
        resp = pull(client, pid, folder="/d", service="port-flaky")
        assert resp.status_code == 502
        assert resp.content_type == "application/problem+json"
        assert resp.json["failed"] == ["broken.bin"]
        by_name = {f["filename"]: f["status"] for f in resp.json["files"]}
        assert by_name == {"ok1.txt": "stored", "sub/ok2.txt": "stored", "broken.bin": "failed"}
        assert sorted(project_files(client, pid)) == ["ok1.txt", "sub/ok2.txt"]
        folder = next((data_dir / "projects").glob("u-*")) / pid
        assert not (folder / "broken.bin").exists()
        assert not any((data_dir / "projects").rglob(".tmp/*"))
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("form", "status", "field"),
    [
        ({"folder": "/r", "service": "http://evil.example/"}, 400, "service"),
        ({"folder": "/r", "service": "port-x@evil.example"}, 400, "service"),
        ({"folder": "/r/../../etc", "service": "port-local"}, 400, "folder"),
        ({"folder": "/r", "service": "port-local", "username": "mallory"}, 403, "username"),
        ({"folder": "/missing", "service": "port-local"}, 404, "filepath"),
    ],
)
def test_bad_pull_requests_get_a_problem(client, form, status, field) -> None:
    put_storage(client, "/r/x.txt", b"x")
    pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
    resp = pull(client, pid, **form)
    assert resp.status_code == status, resp.json
    assert resp.json["field"] == field
    assert project_files(client, pid) == {}


class Listing:
    """A fileStorage source whose folder listings are given as a table (no HTTP)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def list_folder(self, path: str) -> list[str]:
        self.asked.append(path)
        return self.table[path]


@pytest.mark.parametrize(
    ("folder", "table"),
    [
        # port_owncloud: recursive, relative, files only -- one call
        ("/F", {"/F": ["a.csv", "sub/deep/b.csv", "sub/c d.txt"]}),
        # the interface document: absolute, one level, folders ending in '/'
        (
            "/F",
            {
                "/F": ["/F/a.csv", "/F/sub/"],
                "/F/sub": ["/F/sub/c d.txt", "/F/sub/deep/"],
                "/F/sub/deep": ["/F/sub/deep/b.csv"],
            },
        ),
        # relative and one level, folders ending in '/'
        ("/F", {"/F": ["a.csv", "sub/"], "/F/sub": ["c d.txt", "deep/"], "/F/sub/deep": ["b.csv"]}),
        # mixed: a recursive relative listing that also names its folder, and absolute files
        (
            "/F",
            {
                "/F": ["a.csv", "sub/", "sub/deep/b.csv"],
                "/F/sub": ["/F/sub/c d.txt", "deep/b.csv"],
            },
        ),
        # the user's root, as the Exporter sends it ('' after stripping the '/')
        ("/", {"/": ["/a.csv", "/sub/"], "/sub": ["/sub/c d.txt", "deep/b.csv"]}),
    ],
    ids=["port_owncloud", "yml", "relative-one-level", "mixed", "root"],
)
def test_walk_reads_every_listing_a_storage_connector_sends(folder, table) -> None:
    from common.passive_source import walk

    got = walk(Listing(table), folder, limit=10)  # type: ignore[arg-type]
    assert sorted(got) == ["a.csv", "sub/c d.txt", "sub/deep/b.csv"]


@pytest.mark.parametrize("entry", ["../x.csv", "/F/../x.csv", "sub/../../x", "a//b", "/"])
def test_walk_never_leaves_the_folder(entry) -> None:
    from common.errors import UpstreamError
    from common.passive_source import walk

    with pytest.raises(UpstreamError) as err:
        walk(Listing({"/F": ["ok.csv", entry]}), "/F", limit=10)  # type: ignore[arg-type]
    assert "not inside the folder" in err.value.detail


def test_walk_counts_files_once_and_stops_at_the_limit() -> None:
    from common.errors import BadRequest
    from common.passive_source import walk

    twice = Listing({"/F": ["a", "sub/", "sub/b"], "/F/sub": ["b", "/F/sub/b"]})
    assert walk(twice, "/F", limit=2) == ["a", "sub/b"]  # type: ignore[arg-type]
    with pytest.raises(BadRequest) as err:
        walk(Listing({"/F": ["a", "b", "c"]}), "/F", limit=2)  # type: ignore[arg-type]
    assert err.value.field == "folder"


def test_in_process_pull_over_the_cap_zips_folders_and_counts_the_records_other_files(
    client, data_dir, monkeypatch
) -> None:
    from common.backends.local import LocalArchive

    monkeypatch.setattr(LocalArchive, "max_files", 4)
    files = {f"d/{i}.txt": f"{i}".encode() * 100 for i in range(3)}
    files.update({"e/x.bin": os.urandom(70_000), "e/y.bin": b"", "top.txt": b"t"})
    for name, data in files.items():
        put_storage(client, f"/research/{name}", data)
    pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
    resp = client.post(  # one file of another source takes a slot first
        f"/metadata/project/{pid}/files",
        data={"userId": uid(), "filename": "other.txt", "file": (io.BytesIO(b"o"), "o")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200, resp.json

    first = pull(client, pid, folder="/research", service="port-local")
    assert first.status_code == 200, first.json
    assert first.json["counts"] == {"stored": 6, "skipped": 0, "failed": 0}
    # 6 files, 3 slots left: d (3 entries, the fullest) first, then e
    assert [b["filename"] for b in first.json["bundles"]] == ["d.zip", "e.zip"]
    got = project_files(client, pid)
    assert sorted(got) == ["d.zip", "e.zip", "other.txt", "top.txt"]
    folder = next((data_dir / "projects").glob("u-*")) / pid
    for row in first.json["files"]:
        data = files[row["filename"]]
        if "bundle" in row:
            with zipfile.ZipFile(folder / row["bundle"]) as archive:
                assert archive.testzip() is None
                assert archive.read(row["entry"]) == data
        else:
            assert (folder / row["filename"]).read_bytes() == data

    again = pull(client, pid, folder="/research", service="port-local")
    assert again.status_code == 200, again.json
    assert again.json["counts"] == {"stored": 0, "skipped": 6, "failed": 0}


def test_walk_stops_a_storage_that_lists_folders_for_ever() -> None:
    from common.errors import UpstreamError
    from common.passive_source import walk

    class Endless:
        def __init__(self) -> None:
            self.calls = 0

        def list_folder(self, path: str) -> list[str]:
            self.calls += 1
            return ["a/", "b/"]

    source = Endless()
    with pytest.raises(UpstreamError) as err:
        walk(source, "/F", limit=10)  # type: ignore[arg-type]
    assert err.value.field == "folder" and source.calls <= 11


def test_threads_switch_to_the_session_form_together_and_look_the_token_up_once() -> None:
    """A bare-form download refused (500) while others are in flight: every thread asks
    again in the session form; none fails because another one switched first."""
    import threading

    from common.passive_source import StorageClient

    class Answer:
        def __init__(self, status: int) -> None:
            self.status_code = status
            self.headers = {"Content-Length": "2"}

        def iter_content(self, size: int):
            yield b"ok"

        def close(self) -> None:
            pass

    gate = threading.Barrier(4)

    class Session:
        def get(self, url, json, **kw):
            if json["userId"] == "alice@x.org":
                gate.wait(timeout=5)  # all four bare requests are in flight together
                return Answer(500)
            return Answer(200)

    lookups = []
    client = StorageClient(
        "http://storage.invalid",
        "alice@x.org",
        service="port-x",
        session=Session(),  # type: ignore[arg-type]
        timeout=(1, 1),
        session_user_id=lambda: lookups.append(1) or "port-x://alice@x.org:tok",
    )
    results: list[bytes] = []
    errors: list[BaseException] = []

    def fetch(i: int) -> None:
        try:
            results.append(b"".join(client.open(f"/f{i}").chunks))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [b"ok"] * 4
    assert lookups == [1]


@pytest.mark.parametrize("folder", [0, False, {}, [], ["/r"]])
def test_a_folder_that_is_not_a_string_is_a_400_not_the_root(client, folder) -> None:
    put_storage(client, "/r/x.txt", b"x")
    pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
    resp = client.post(
        f"/metadata/project/{pid}/files",
        json={"userId": uid(), "folder": folder, "service": "port-local"},
    )
    assert resp.status_code == 400 and resp.json["field"] == "folder"
    assert project_files(client, pid) == {}
