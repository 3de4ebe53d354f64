"""The metadata (archive) contract: every archive backend passes it against its server.

``local`` on a temp folder, ``zenodo`` against the fake Zenodo on loopback. A new archive
backend joins ``BACKENDS`` with a ``Case`` builder (the backend, two users, a way to read a
stored file's bytes back from the archive itself) and must pass every test here before it
can land; see docs/adding-a-backend.md.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common.backends.base import Archive
from common.config import load_settings
from common.errors import BadRequest, ConnectorError, NotFound
from common.identity import Identity
from common.rocrate import find_root
from common.streams import Upload
from tests.support.crates import crate
from tests.support.fake_inveniordm import FakeInvenioRDM
from tests.support.fake_zenodo import FakeZenodo
from tests.support.servers import ServerThread

BACKENDS = ["local", "zenodo", "inveniordm"]
MiB = 1024 * 1024
FILES = {
    "a.csv": b"depth,ph\n1,7\n",
    "raw/2026/naïve 文件 (1).txt": "grüße".encode(),
    "raw/100% #1 &+=?.bin": os.urandom(3 * MiB + 1),
}
CRATE = crate(
    {
        "name": "Contract crate",
        "description": "What every archive must keep.",
        "datePublished": "2026-05-01",
        "creator": {"@id": "#mm"},
        "license": {"@id": "https://spdx.org/licenses/CC-BY-4.0"},
    },
    {"@id": "#mm", "@type": "Person", "familyName": "Mustermann", "givenName": "Max"},
)


@dataclass
class Case:
    archive: Archive
    alice: Identity
    bob: Identity
    read: Callable[[Identity, str, str], bytes]  # (who, project id, filename) -> bytes
    accepts_empty_files: bool


@pytest.fixture(scope="module")
def zenodo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeZenodo, str]]:
    fake = FakeZenodo(tmp_path_factory.mktemp("zenodo-contract"))
    fake.add_token("tok-c-alice", user="alice")
    fake.add_token("tok-c-bob", user="bob")
    server = ServerThread(fake.app).start()
    yield fake, server.url
    server.stop()
    fake.close()


@pytest.fixture(scope="module")
def inveniordm_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FakeInvenioRDM, str]]:
    fake = FakeInvenioRDM(tmp_path_factory.mktemp("inveniordm-contract"))
    fake.add_token("tok-i-alice", user="alice")
    fake.add_token("tok-i-bob", user="bob")
    server = ServerThread(fake.app).start()
    yield fake, server.url
    server.stop()
    fake.close()


def _local(tmp_path: Path, request: pytest.FixtureRequest) -> Case:
    from common.backends.local import LocalArchive, user_dir

    archive = LocalArchive.from_settings(load_settings({"CONNECTOR_DATA_DIR": str(tmp_path)}))

    def read(who: Identity, pid: str, name: str) -> bytes:
        return (user_dir(tmp_path.resolve() / "projects", who.user) / pid / name).read_bytes()

    alice, bob = Identity("alice@cloud.example.org"), Identity("bob@cloud.example.org")
    return Case(archive, alice, bob, read, accepts_empty_files=True)


def _zenodo(tmp_path: Path, request: pytest.FixtureRequest) -> Case:
    from common.backends.zenodo import ZenodoArchive, to_key

    fake, url = request.getfixturevalue("zenodo_server")
    archive = ZenodoArchive(url, "cid", "csecret", "https://rds.example/cb")

    def read(who: Identity, pid: str, name: str) -> bytes:
        return fake.file_bytes(int(pid), to_key(name))

    alice = Identity("alice@cloud.example.org", "tok-c-alice")
    bob = Identity("bob@cloud.example.org", "tok-c-bob")
    return Case(archive, alice, bob, read, accepts_empty_files=False)


def _inveniordm(tmp_path: Path, request: pytest.FixtureRequest) -> Case:
    from common.backends.inveniordm import InvenioRDMArchive

    fake, url = request.getfixturevalue("inveniordm_server")
    archive = InvenioRDMArchive(url)

    def read(who: Identity, pid: str, name: str) -> bytes:
        return fake.file_bytes(pid, name)  # keys are the relative paths themselves

    alice = Identity("alice@cloud.example.org", "tok-i-alice")
    bob = Identity("bob@cloud.example.org", "tok-i-bob")
    return Case(archive, alice, bob, read, accepts_empty_files=True)


@pytest.fixture(params=BACKENDS)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    builders = {"local": _local, "zenodo": _zenodo, "inveniordm": _inveniordm}
    return builders[request.param](tmp_path, request)


def store(case: Case, pid: str, name: str, data: bytes, **kw: Any) -> Any:
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)] or [b""]
    return case.archive.store_file(case.alice, pid, Upload(name, iter(chunks), **kw))


def project(case: Case) -> str:
    created = case.archive.create_project(case.alice, None)
    assert isinstance(created["projectId"], str) and created["projectId"]
    assert isinstance(created["metadata"], dict)
    return created["projectId"]


def test_a_project_is_created_listed_read_updated_and_deleted(case: Case) -> None:
    pid = project(case)
    assert pid in [p["projectId"] for p in case.archive.list_projects(case.alice)]
    case.archive.update_project(case.alice, pid, CRATE)
    root = find_root(case.archive.get_project(case.alice, pid))
    assert root["name"] == "Contract crate"
    case.archive.delete_project(case.alice, pid)
    assert pid not in [p["projectId"] for p in case.archive.list_projects(case.alice)]
    with pytest.raises(NotFound):
        case.archive.get_project(case.alice, pid)


def test_files_round_trip_byte_exact_with_nested_names(case: Case) -> None:
    pid = project(case)
    for name, data in FILES.items():
        stored = store(case, pid, name, data, size=len(data))
        assert stored["filename"] == name
        assert stored["size"] == len(data)
        assert stored["checksum"] == "md5:" + hashlib.md5(data).hexdigest()
    listed = {f["filename"]: f for f in case.archive.list_files(case.alice, pid)}
    assert sorted(listed) == sorted(FILES)
    for name, data in FILES.items():
        assert case.read(case.alice, pid, name) == data
        entry = case.archive.get_file(case.alice, pid, listed[name]["id"])
        assert (entry["filename"], entry["size"]) == (name, len(data))


def test_an_upload_of_unknown_size_is_stored_whole(case: Case) -> None:
    pid = project(case)
    data = os.urandom(MiB + 3)
    assert store(case, pid, "unsized.bin", data)["size"] == len(data)
    assert case.read(case.alice, pid, "unsized.bin") == data


def test_rename_delete_one_and_delete_all(case: Case) -> None:
    pid = project(case)
    for name, data in FILES.items():
        store(case, pid, name, data, size=len(data))
    renamed = case.archive.update_file(case.alice, pid, "a.csv", {"filename": "moved/b.csv"})
    assert renamed["filename"] == "moved/b.csv"
    assert case.read(case.alice, pid, "moved/b.csv") == FILES["a.csv"]
    case.archive.delete_file(case.alice, pid, "moved/b.csv")
    names = [f["filename"] for f in case.archive.list_files(case.alice, pid)]
    assert sorted(names) == sorted(n for n in FILES if n != "a.csv")
    case.archive.delete_files(case.alice, pid)
    assert case.archive.list_files(case.alice, pid) == []
    with pytest.raises(NotFound):
        case.archive.get_file(case.alice, pid, "a.csv")


def test_another_users_project_is_a_404(case: Case) -> None:
    pid = project(case)
    store(case, pid, "a.csv", FILES["a.csv"], size=len(FILES["a.csv"]))
    for call in (
        lambda: case.archive.get_project(case.bob, pid),
        lambda: case.archive.list_files(case.bob, pid),
        lambda: case.archive.update_project(case.bob, pid, CRATE),
        lambda: case.archive.delete_project(case.bob, pid),
        lambda: case.archive.store_file(case.bob, pid, Upload("x", iter([b"x"]), size=1)),
    ):
        with pytest.raises(NotFound) as err:
            call()
        assert err.value.status == 404
    assert pid not in [p["projectId"] for p in case.archive.list_projects(case.bob)]
    assert [f["filename"] for f in case.archive.list_files(case.alice, pid)] == ["a.csv"]


def test_a_broken_or_lying_upload_leaves_nothing(case: Case) -> None:
    pid = project(case)

    def broken() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise ConnectionError("the caller went away")

    with pytest.raises((ConnectorError, ConnectionError)):
        case.archive.store_file(case.alice, pid, Upload("half.bin", broken(), size=200_000))
    for data in (b"x" * 10, b"x" * 30):
        with pytest.raises(ConnectorError) as err:
            case.archive.store_file(case.alice, pid, Upload("liar.bin", iter([data]), size=20))
        assert 400 <= err.value.status < 500
    assert case.archive.list_files(case.alice, pid) == []


def test_bad_names_are_400_naming_filename(case: Case) -> None:
    pid = project(case)
    for name in ("../x", "a//b", "nul\x00", ""):
        with pytest.raises(BadRequest) as err:
            case.archive.store_file(case.alice, pid, Upload(name, iter([b"x"]), size=1))
        assert err.value.field == "filename"


def test_an_empty_file_is_stored_or_refused_naming_it(case: Case) -> None:
    pid = project(case)
    if case.accepts_empty_files:
        assert store(case, pid, "empty.txt", b"", size=0)["size"] == 0
        return
    with pytest.raises(ConnectorError) as err:
        store(case, pid, "empty.txt", b"", size=0)
    assert err.value.status == 422 and "empty.txt" in err.value.detail
    assert case.archive.list_files(case.alice, pid) == []


def test_publish_answers_the_doi_and_freezes_the_project(case: Case) -> None:
    pid = project(case)
    case.archive.update_project(case.alice, pid, CRATE)
    store(case, pid, "a.csv", FILES["a.csv"], size=len(FILES["a.csv"]))
    doi = case.archive.publish_project(case.alice, pid)
    assert isinstance(doi, str) and doi.startswith("10.")
    with pytest.raises(ConnectorError) as err:
        store(case, pid, "late.csv", b"late", size=4)
    assert err.value.status == 409
    with pytest.raises(ConnectorError) as err:
        case.archive.delete_project(case.alice, pid)
    assert err.value.status == 409
    assert case.read(case.alice, pid, "a.csv") == FILES["a.csv"]
