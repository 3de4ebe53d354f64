"""Small wrong answers found by attacking the connector, each now the right one."""

from __future__ import annotations

import io
import threading

import pytest

from common.backends.local import LocalArchive
from common.config import load_settings
from common.errors import BadRequest
from common.identity import Identity, resolve_identity
from tests.conftest import uid


def store(client, path: str, data: bytes = b"x") -> int:
    resp = client.post(
        "/storage/file",
        data={"userId": uid(), "filepath": path, "file": (io.BytesIO(data), "f")},
        content_type="multipart/form-data",
    )
    return resp.status_code


def test_a_move_onto_an_in_flight_name_is_a_400_and_the_file_stays(client) -> None:
    assert store(client, "/a.txt", b"kept") == 200
    moved = client.patch(
        "/storage/file", json={"userId": uid(), "filepath": "/a.txt", "newfilepath": "/.tmp/x"}
    )
    assert moved.status_code == 400 and moved.json["field"] == "newfilepath"
    got = client.get("/storage/file", json={"userId": uid(), "filepath": "/a.txt"})
    assert got.data == b"kept"
    assert client.get("/storage/folder", json={"userId": uid(), "filepath": "/"}).json == {
        "files": ["a.txt"]
    }


@pytest.mark.parametrize("target", ["/d", "/d/inner", "/d/inner/deeper"])
def test_a_folder_moved_into_itself_is_a_400_and_nothing_changes(client, target) -> None:
    assert store(client, "/d/f.txt") == 200
    moved = client.patch(
        "/storage/file", json={"userId": uid(), "filepath": "/d", "newfilepath": target}
    )
    assert moved.status_code == 400 and moved.json["field"] == "newfilepath"
    listed = client.get("/storage/folder", json={"userId": uid(), "filepath": "/"}).json
    assert listed == {"files": ["d/f.txt"]}


@pytest.mark.parametrize("user", ["..", ".", "a/b", "a\\b", "../bob"])
def test_user_names_that_could_climb_are_refused_for_every_backend(user) -> None:
    for needs_token in (False, True):
        with pytest.raises(BadRequest) as err:
            resolve_identity(
                f"port-x://{user}:tok",
                None,
                servicename="port-x",
                needs_token=needs_token,
                lookup=lambda _: None,
            )
        assert err.value.field == "userId"


def test_listing_projects_while_one_is_deleted_never_fails(tmp_path) -> None:
    archive = LocalArchive.from_settings(load_settings({"CONNECTOR_DATA_DIR": str(tmp_path)}))
    who = Identity("alice@cloud.example.org")
    ids = [archive.create_project(who, None)["projectId"] for _ in range(40)]
    errors: list[BaseException] = []

    def lister() -> None:
        try:
            for _ in range(30):
                listed = {p["projectId"] for p in archive.list_projects(who)}
                assert listed <= set(ids)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=lister)
    thread.start()
    for pid in ids:
        archive.delete_project(who, pid)
    thread.join()
    assert errors == []
    assert archive.list_projects(who) == []
