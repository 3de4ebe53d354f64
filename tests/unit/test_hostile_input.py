"""Hostile and malformed requests through the router: each is a 4xx problem naming the field,
nothing is stored, and nothing becomes a 500. The plain cases (malformed JSON, 415, missing
userId, escaping paths) live in test_bad_input.py, test_paths.py and test_local_workflow.py;
this file adds what the fuzzer found and the harder cases of issue 6."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from werkzeug.datastructures import MultiDict

from tests.conftest import uid
from tests.unit.test_bad_input import problem
from tests.unit.test_local_workflow import CRATE, new_project, upload


def files(client, pid: str) -> list[dict]:
    return client.get(f"/metadata/project/{pid}/files", json={"userId": uid()}).json


# -- userId ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "user_id",
    ["alice\udc80", "port-local://alice@cloud.example.org:tok\ud800"],
    ids=["bare", "session"],
)
def test_userid_with_a_lone_surrogate_is_401_not_500(client, user_id) -> None:
    # found by the fuzzer: JSON's "\udc80" escape decodes to a str no UTF-8 can carry
    problem(client.get("/metadata/project", json={"userId": user_id}), 401, "userId")


def test_a_very_long_user_name_still_gets_its_own_folder(client, data_dir) -> None:
    # found by the fuzzer: 100 mathematical letters percent-encode to 1200 bytes, over
    # any file system's 255-byte name limit; the local backend crashed with ENAMETOOLONG
    long_user = "\U0001d57f" * 100  # MATHEMATICAL BOLD FRAKTUR CAPITAL T
    resp = client.post("/metadata/project", json={"userId": long_user})
    assert resp.status_code == 200, resp.data
    pid = resp.json["projectId"]
    assert client.get(f"/metadata/project/{pid}", json={"userId": long_user}).status_code == 200
    other = "\U0001d57f" * 99 + "\U0001d580"
    assert client.get(f"/metadata/project/{pid}", json={"userId": other}).status_code == 404
    assert all(len(p.name) <= 255 for p in data_dir.rglob("*"))


# -- bodies ---------------------------------------------------------------------------------
def test_json_nested_too_deeply_is_400_not_500(client) -> None:
    body = b'{"userId": "x", "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    problem(
        client.post("/metadata/project", data=body, content_type="application/json"), 400, "body"
    )
    nested = "[" * 100_000 + "]" * 100_000
    problem(client.post("/metadata/project", json={"userId": uid(), "metadata": nested}), 400)


# -- file names -----------------------------------------------------------------------------
def test_a_name_too_long_for_the_data_folder_is_400_not_500(client, data_dir) -> None:
    # found while fuzzing: every segment is legal and the whole is under 4096 bytes, but
    # with the data folder's path in front the file system refuses it (ENAMETOOLONG)
    pid = new_project(client)
    name = "/".join(["d" * 250] * 16)
    problem(upload(client, pid, name, b"x"), 400, "filename")
    assert files(client, pid) == []
    assert not [p for p in data_dir.rglob("*") if p.is_file() and ".tmp" in p.parts]


@pytest.mark.parametrize(
    "name",
    [
        "../x.txt",
        "/../abs.txt",
        "a\\..\\b.txt",
        "nul\x00.txt",
        "ctl\x1b[31m.txt",
        "line\nbreak.txt",
        "del\x7f.txt",
        "x" * 4096,
        "/".join(["y" * 200] * 21),  # 4220 characters, every segment legal
    ],
    ids=[
        "dotdot",
        "absolute-climb",
        "backslash",
        "nul",
        "escape",
        "newline",
        "del",
        "4096",
        "deep",
    ],
)
@pytest.mark.parametrize("route", ["archive", "storage"])
def test_hostile_file_names_are_400_and_store_nothing(client, data_dir, name, route) -> None:
    if route == "archive":
        pid = new_project(client)
        resp = upload(client, pid, name, b"evil")
        field = "filename"
    else:  # storage paths are absolute: "/abs.txt" is fine there, "//abs.txt" is not
        path = "/" + name if name.startswith("/") else name
        resp = client.post(
            "/storage/file",
            data={"userId": uid(), "filepath": path, "file": (io.BytesIO(b"evil"), "f")},
            content_type="multipart/form-data",
        )
        field = "filepath"
    problem(resp, 400, field)
    stored = [p for p in data_dir.rglob("*") if p.is_file() and p.read_bytes() == b"evil"]
    assert stored == []


@pytest.mark.parametrize("name", ["/sub/abs.txt", "//sub/abs.txt"])
def test_a_leading_slash_in_an_archive_name_is_dropped(client, name) -> None:
    """The Exporter passes a storage listing's entries on unchanged as ``filename``; a
    storage that lists absolute paths must not get every file refused."""
    pid = new_project(client)
    resp = upload(client, pid, name, b"kept")
    assert resp.status_code == 200, resp.json
    assert [f["filename"] for f in files(client, pid)] == ["sub/abs.txt"]


def test_duplicate_names_in_one_upload_run_the_last_one_wins(client) -> None:
    """Like Zenodo's "PUT to an existing key replaces": each part is stored in turn, the
    answer reports both, the project keeps the second."""
    pid = new_project(client)
    body = MultiDict(
        [
            ("userId", uid()),
            ("filename", "dup.txt"),
            ("file", (io.BytesIO(b"first"), "dup.txt")),
            ("file", (io.BytesIO(b"second!"), "dup.txt")),
        ]
    )
    resp = client.post(
        f"/metadata/project/{pid}/files", data=body, content_type="multipart/form-data"
    )
    assert resp.status_code == 200, resp.json
    assert [(f["filename"], f["size"]) for f in resp.json["files"]] == [
        ("dup.txt", 5),
        ("dup.txt", 7),
    ]
    assert [(f["filename"], f["checksum"]) for f in files(client, pid)] == [
        ("dup.txt", "md5:" + hashlib.md5(b"second!").hexdigest())
    ]


# -- who ------------------------------------------------------------------------------------
def test_an_upload_for_another_service_is_401_and_stores_nothing(client) -> None:
    pid = new_project(client)
    resp = upload(client, pid, "a.txt", b"x", user_id=uid(service="port-zenodo"))
    problem(resp, 401, "userId")
    assert files(client, pid) == []


# -- limits ---------------------------------------------------------------------------------
def test_a_form_field_over_its_limit_is_413(client) -> None:
    pid = new_project(client)
    body = (
        b'--B\r\nContent-Disposition: form-data; name="userId"\r\n\r\n'
        + uid().encode()
        + b'\r\n--B\r\nContent-Disposition: form-data; name="filename"\r\n\r\n'
        + b"n" * (1024 * 1024 + 1)
        + b'\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\nx'
        + b"\r\n--B--\r\n"
    )
    resp = client.post(
        f"/metadata/project/{pid}/files", data=body, content_type="multipart/form-data; boundary=B"
    )
    problem(resp, 413, "body")
    assert files(client, pid) == []


def test_too_many_form_parts_are_413(client) -> None:
    pid = new_project(client)
    part = b'--B\r\nContent-Disposition: form-data; name="x"\r\n\r\ny\r\n'
    body = part * 1001 + b"--B--\r\n"
    resp = client.post(
        f"/metadata/project/{pid}/files", data=body, content_type="multipart/form-data; boundary=B"
    )
    problem(resp, 413, "body")


def test_headers_over_the_limit_are_431(make_runtime) -> None:
    from local_router import build_app

    client = build_app(make_runtime(CONNECTOR_MAX_HEADER_BYTES="2048")).test_client()
    ok = client.get("/metadata/project", json={"userId": uid()}, headers={"X-Small": "a" * 100})
    assert ok.status_code == 200
    resp = client.get("/metadata/project", json={"userId": uid()}, headers={"X-Big": "a" * 3000})
    problem(resp, 431, "headers")


def test_multipart_without_boundary_is_400(client) -> None:
    pid = new_project(client)
    resp = client.post(
        f"/metadata/project/{pid}/files", data=b"--x\r\n", content_type="multipart/form-data"
    )
    problem(resp, 400, "Content-Type")


def test_a_raw_body_on_the_upload_route_is_400_naming_the_file(client) -> None:
    pid = new_project(client)
    resp = client.post(
        f"/metadata/project/{pid}/files",
        data=b"\x00" * 100,
        content_type="application/octet-stream",
    )
    assert resp.status_code in (400, 415), resp.json
    assert resp.content_type == "application/problem+json"


# -- RO-Crates --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "metadata",
    [
        {"titles": [{"title": "DataCite-style, not JSON-LD"}], "publisher": "x"},
        {"@context": "https://w3id.org/ro/crate/1.1/context"},
        {"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": {"@id": "./"}},
        {"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": [{"name": "no id"}]},
        {"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": ["./"]},
    ],
    ids=["not-json-ld", "no-graph", "graph-not-list", "entity-without-id", "entity-not-object"],
)
def test_a_crate_of_the_wrong_shape_is_400(client, metadata) -> None:
    pid = new_project(client)
    before = client.get(f"/metadata/project/{pid}", json={"userId": uid()}).json
    resp = client.patch(f"/metadata/project/{pid}", json={"userId": uid(), "metadata": metadata})
    problem(resp, 400, "metadata")
    assert client.get(f"/metadata/project/{pid}", json={"userId": uid()}).json == before
    problem(client.post("/metadata/project", json={"userId": uid(), "metadata": metadata}), 400)


def test_an_uploaded_crate_of_the_wrong_shape_is_400(client) -> None:
    pid = new_project(client)
    resp = upload(client, pid, "ro-crate-metadata.json", b'{"titles": []}')
    problem(resp, 400, "file")


def test_a_crate_without_root_or_with_cycles_is_stored_as_sent(client) -> None:
    """The local backend reads nothing from the crate, so a crate with no root entity or
    with entities that reference each other in a cycle round-trips unchanged (an archive
    that maps the root must answer 400 for the first: see common.rocrate.find_root)."""
    no_root = {"@context": CRATE["@context"], "@graph": [{"@id": "#a", "@type": "Person"}]}
    cycle = {
        "@context": CRATE["@context"],
        "@graph": [
            *CRATE["@graph"],
            {"@id": "#x", "hasPart": {"@id": "#y"}, "isPartOf": {"@id": "./"}},
            {"@id": "#y", "hasPart": {"@id": "#x"}},
            {"@id": "#self", "sameAs": {"@id": "#self"}},
        ],
    }
    for crate in (no_root, cycle):
        pid = new_project(client)
        resp = client.patch(f"/metadata/project/{pid}", json={"userId": uid(), "metadata": crate})
        assert resp.status_code == 200, resp.json
        assert client.get(f"/metadata/project/{pid}", json={"userId": uid()}).json == crate
        assert client.put(f"/metadata/project/{pid}", json={"userId": uid()}).status_code == 200


def test_empty_metadata_means_none(client) -> None:
    pid = new_project(client, metadata={})
    crate = client.get(f"/metadata/project/{pid}", json={"userId": uid()}).json
    assert "@graph" in crate
    resp = client.patch(f"/metadata/project/{pid}", json={"userId": uid(), "metadata": {}})
    assert resp.status_code == 200 and resp.json == crate


def test_a_50_mb_crate_is_413_as_body_and_as_upload(client) -> None:
    pid = new_project(client)
    big = {**CRATE, "@graph": [*CRATE["@graph"], {"@id": "#pad", "text": "p" * (50 * 2**20)}]}
    resp = client.patch(f"/metadata/project/{pid}", json={"userId": uid(), "metadata": big})
    problem(resp, 413, "body")
    resp = upload(client, pid, "ro-crate-metadata.json", json.dumps(big).encode())
    problem(resp, 413, "file")
    assert client.get(f"/metadata/project/{pid}", json={"userId": uid()}).json["@graph"][1:] == [
        {"@id": "./", "@type": "Dataset", "name": ""}
    ]
