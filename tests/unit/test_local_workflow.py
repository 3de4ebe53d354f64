"""The whole metadata and fileStorage interfaces on the local backend, through the router."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from tests.conftest import USER, uid

CRATE = {
    "@context": "https://w3id.org/ro/crate/1.1/context",
    "@graph": [
        {
            "@id": "ro-crate-metadata.json",
            "@type": "CreativeWork",
            "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
            "about": {"@id": "./"},
        },
        {"@id": "./", "@type": "Dataset", "name": "Soil samples", "description": "Two years"},
    ],
}


def upload(client, pid, name, data, user_id=None):
    return client.post(
        f"/metadata/project/{pid}/files",
        data={
            "userId": user_id or uid(),
            "filename": name,
            "username": USER,
            "file": (io.BytesIO(data), name.rsplit("/", 1)[-1]),
        },
        content_type="multipart/form-data",
    )


def new_project(client, **body):
    resp = client.post("/metadata/project", json={"userId": uid(), **body})
    assert resp.status_code == 200, resp.json
    return resp.json["projectId"]


def test_metadata_lifecycle(client, data_dir) -> None:
    pid = new_project(client)
    assert (
        client.patch(f"/metadata/project/{pid}", json={"userId": uid(), "metadata": CRATE}).json
        == CRATE
    )
    assert client.get(f"/metadata/project/{pid}", json={"userId": uid()}).json == CRATE
    listed = client.get("/metadata/project", json={"userId": uid()}).json
    assert listed == [{"projectId": pid, "metadata": CRATE}]

    files = {
        "data/raw/a.csv": b"x,y\n1,2\n",
        "empty.txt": b"",
        "Übersicht/naïve 文件.txt": "ü".encode(),
    }
    for name, data in files.items():
        resp = upload(client, pid, name, data)
        assert resp.status_code == 200, resp.json
        assert resp.json["success"] is True
        assert resp.json["files"][0]["filename"] == name
    got = client.get(f"/metadata/project/{pid}/files", json={"userId": uid()}).json
    assert {f["filename"]: (f["size"], f["checksum"]) for f in got} == {
        n: (len(d), "md5:" + hashlib.md5(d).hexdigest()) for n, d in files.items()
    }
    folder = next((data_dir / "projects").glob("u-*")) / pid
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
    assert json.loads((folder / "ro-crate-metadata.json").read_text()) == CRATE

    resp = client.put(f"/metadata/project/{pid}", json={"userId": uid()})
    assert resp.status_code == 200
    assert resp.json["DOI"].startswith("10.5072/")
    assert client.put(f"/metadata/project/{pid}", json={"userId": uid()}).json == resp.json
    for late in (
        client.patch(f"/metadata/project/{pid}", json={"userId": uid(), "metadata": CRATE}),
        upload(client, pid, "late.txt", b"late"),
        client.delete(f"/metadata/project/{pid}", json={"userId": uid()}),
        client.delete(f"/metadata/project/{pid}/files/empty.txt", json={"userId": uid()}),
    ):
        assert late.status_code == 409
        assert late.content_type == "application/problem+json"


def test_single_file_routes_and_delete_all(client) -> None:
    pid = new_project(client, metadata=CRATE)
    upload(client, pid, "a/b/c.txt", b"abc")
    upload(client, pid, "d.txt", b"d")
    base = f"/metadata/project/{pid}/files"
    assert client.get(f"{base}/a/b/c.txt", json={"userId": uid()}).json["size"] == 3
    renamed = client.patch(f"{base}/a/b/c.txt", json={"userId": uid(), "filename": "e/f.txt"})
    assert renamed.json["filename"] == "e/f.txt"
    assert client.get(f"{base}/a/b/c.txt", json={"userId": uid()}).status_code == 404
    assert client.delete(f"{base}/d.txt", json={"userId": uid()}).json == {"success": True}
    assert [f["id"] for f in client.get(base, json={"userId": uid()}).json] == ["e/f.txt"]
    assert client.delete(base, json={"userId": uid()}).status_code == 200
    assert client.get(base, json={"userId": uid()}).json == []
    assert client.delete(f"/metadata/project/{pid}", json={"userId": uid()}).status_code == 204
    assert client.get(f"/metadata/project/{pid}", json={"userId": uid()}).status_code == 404


def test_uploaded_crate_file_becomes_the_metadata(client) -> None:
    pid = new_project(client)
    assert (
        upload(client, pid, "ro-crate-metadata.json", json.dumps(CRATE).encode()).status_code == 200
    )
    assert client.get(f"/metadata/project/{pid}", json={"userId": uid()}).json == CRATE
    assert upload(client, pid, "ro-crate-metadata.json", b"{not json").status_code == 400


def test_users_see_only_their_own_projects(client) -> None:
    pid = new_project(client)
    bob = uid("bob@cloud.example.org", "tok-bob")
    assert client.get(f"/metadata/project/{pid}", json={"userId": bob}).status_code == 404
    assert client.get("/metadata/project", json={"userId": bob}).json == []
    assert upload(client, pid, "x.txt", b"x", user_id=bob).status_code == 404


def test_a_second_upload_of_a_name_replaces_it(client) -> None:
    pid = new_project(client)
    upload(client, pid, "same.txt", b"one")
    upload(client, pid, "same.txt", b"second")
    got = client.get(f"/metadata/project/{pid}/files", json={"userId": uid()}).json
    assert [(f["filename"], f["size"]) for f in got] == [("same.txt", 6)]


def test_storage_interface_round_trip(client) -> None:
    def store(path, data):
        return client.post(
            "/storage/file",
            data={"userId": uid(), "filepath": path, "file": (io.BytesIO(data), "f")},
            content_type="multipart/form-data",
        )

    assert store("/research/raw/a.csv", b"1,2").status_code == 200
    assert store("/research/b.txt", b"").status_code == 200
    assert store("/research/ä ö.txt", b"umlaut").status_code == 200
    listing = client.get("/storage/folder", json={"userId": uid(), "filepath": "/research"}).json
    assert listing == {"files": ["b.txt", "raw/a.csv", "ä ö.txt"]}  # what port_owncloud answers
    assert client.get("/storage/folder", json={"userId": uid(), "filepath": "/"}).json == {
        "files": ["research/b.txt", "research/raw/a.csv", "research/ä ö.txt"]
    }
    children = {"userId": uid(), "filepath": "/research", "recursive": False}
    assert client.get("/storage/folder", json=children).json == {
        "files": ["/research/b.txt", "/research/raw/", "/research/ä ö.txt"]
    }
    assert client.get(
        "/storage/folder", json={"userId": uid(), "filepath": "/research/b.txt"}
    ).json == {"files": []}
    got = client.get("/storage/file", json={"userId": uid(), "filepath": "/research/raw/a.csv"})
    assert (got.status_code, got.data, got.headers["Content-Length"]) == (200, b"1,2", "3")
    part = client.get(
        "/storage/file",
        json={"userId": uid(), "filepath": "/research/ä ö.txt"},
        headers={"Range": "bytes=1-3"},
    )
    assert (part.status_code, part.data, part.headers["Content-Range"]) == (
        206,
        b"mla",
        "bytes 1-3/6",
    )
    moved = client.patch(
        "/storage/file",
        json={"userId": uid(), "filepath": "/research/b.txt", "newfilepath": "/archive/b.txt"},
    )
    assert moved.status_code == 200
    assert (
        client.delete("/storage/file", json={"userId": uid(), "filepath": "/research"}).status_code
        == 200
    )
    assert client.get("/storage/folder", json={"userId": uid(), "filepath": "/"}).json == {
        "files": ["archive/b.txt"]
    }
    other = uid("bob", "t")
    assert (
        client.get(
            "/storage/file", json={"userId": other, "filepath": "/archive/b.txt"}
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    "name", ["../escape.txt", "/../abs.txt", "a/../../b", "a\\b", "nul\x00.txt", "x" * 300, "a//b"]
)
def test_upload_names_that_escape_are_400(client, name, data_dir) -> None:
    pid = new_project(client)
    resp = upload(client, pid, name, b"evil")
    assert resp.status_code == 400
    assert resp.json["field"] == "filename"
    assert not list(data_dir.rglob("escape.txt")) and not list(data_dir.rglob("abs.txt"))
    assert client.get(f"/metadata/project/{pid}/files", json={"userId": uid()}).json == []


@pytest.mark.parametrize("path", ["/../x", "/a/../../etc", "/a\\b", "//etc/passwd"])
def test_storage_paths_that_escape_are_400(client, path) -> None:
    resp = client.get("/storage/file", json={"userId": uid(), "filepath": path})
    assert (resp.status_code, resp.json["field"]) == (400, "filepath")


def test_an_absurd_range_is_ignored_not_a_crash(client) -> None:
    client.post(
        "/storage/file",
        data={"userId": uid(), "filepath": "/r.txt", "file": (io.BytesIO(b"abc"), "f")},
        content_type="multipart/form-data",
    )
    resp = client.get(
        "/storage/file",
        json={"userId": uid(), "filepath": "/r.txt"},
        headers={"Range": "bytes=" + "9" * 5000 + "-"},
    )
    assert (resp.status_code, resp.data) == (200, b"abc")


def test_uploads_in_flight_are_not_user_files(client) -> None:
    for method, body in (("GET", {"filepath": "/.tmp"}), ("DELETE", {"filepath": "/.tmp"})):
        path = "/storage/folder" if method == "GET" else "/storage/file"
        resp = client.open(path, method=method, json={"userId": uid(), **body})
        assert resp.status_code == 404
    resp = client.post(
        "/storage/file",
        data={"userId": uid(), "filepath": "/.tmp/x", "file": (io.BytesIO(b"x"), "f")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 400
