"""Hostile and malformed requests through the router: each is a 4xx problem naming the field,
nothing is stored, and nothing becomes a 500. The plain cases (malformed JSON, 415, missing
userId, escaping paths) live in test_bad_input.py, test_paths.py and test_local_workflow.py;
this file adds what the fuzzer found and the harder cases of issue 6."""

from __future__ import annotations

import io

import pytest

from tests.conftest import uid
from tests.test_bad_input import problem


def new_project(client) -> str:
    resp = client.post("/metadata/project", json={"userId": uid()})
    assert resp.status_code == 200, resp.data
    return resp.json["projectId"]


def upload(client, pid: str, name: str, data: bytes, user_id: str | None = None):
    return client.post(
        f"/metadata/project/{pid}/files",
        data={"userId": user_id or uid(), "filename": name, "file": (io.BytesIO(data), "f")},
        content_type="multipart/form-data",
    )


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
