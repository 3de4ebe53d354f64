"""The fileStorage contract: every storage backend passes it against its real server.

``local`` on a temp folder, ``webdav`` against wsgidav, ``s3`` against moto's server, all on
loopback. A new storage backend joins ``BACKENDS`` (and a ``Case`` builder below) and must
pass every test here before it can land; see docs/adding-a-backend.md.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common.backends.base import Storage
from common.config import load_settings
from common.errors import BadRequest, ConnectorError, NotFound, UnprocessableContent
from common.identity import Identity
from common.streams import Upload
from tests.support.servers import free_port
from tests.support.storage_routes import read
from tests.support.webdav import WebDAVServer

BACKENDS = ["local", "webdav", "s3"]
MiB = 1024 * 1024
NAMES = {
    "a.csv": b"depth,ph\n1,7\n",
    "empty.txt": b"",
    "sub dir/naïve 文件 (1).txt": "grüße".encode(),
    # no '?': wsgidav unquotes a MOVE's Destination before parsing it as a URL and cuts
    # the name there (ownCloud and Nextcloud do not); S3's own tests keep '?'
    "sub dir/deeper/100% #1 &+=.bin": os.urandom(3 * MiB + 1),
}


@dataclass
class Case:
    """One backend under contract: the storage, two users, and a way to plant an upload in
    flight (the backend's own temporary file) that listings must never show."""

    storage: Storage
    alice: Identity
    bob: Identity
    plant_in_flight: Callable[[Identity, str], None]


@pytest.fixture(scope="module")
def dav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDAVServer]:
    users = {"alice": ("tok-c-alice", "pw-alice"), "bob": ("tok-c-bob", "pw-bob")}
    server = WebDAVServer(tmp_path_factory.mktemp("dav-contract"), users).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _local(tmp_path: Path, request: pytest.FixtureRequest) -> Case:
    from common.backends.local import LocalStorage, user_dir

    storage = LocalStorage.from_settings(load_settings({"CONNECTOR_DATA_DIR": str(tmp_path)}))

    def plant(who: Identity, name: str) -> None:
        folder = user_dir(tmp_path.resolve() / "storage", who.user) / ".tmp"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"half")

    return Case(storage, Identity("alice@cloud.example.org"), Identity("bob@x.org"), plant)


def _webdav(tmp_path: Path, request: pytest.FixtureRequest) -> Case:
    from common.backends.webdav import WebDAVStorage

    dav: WebDAVServer = request.getfixturevalue("dav")
    for user in ("alice", "bob"):
        for child in (dav.root / user).iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    env = {
        "CONNECTOR_CONFIG": "",
        "CONNECTOR_STORAGE": "webdav",
        "EFSS_SYSTEM": "owncloud",
        "OWNCLOUD_INSTALLATION_URL": dav.url,
        "OWNCLOUD_OAUTH_CLIENT_ID": "contract-client",
        "OWNCLOUD_OAUTH_CLIENT_SECRET": "contract-secret",
    }
    storage = WebDAVStorage.from_settings(load_settings(env))

    def plant(who: Identity, name: str) -> None:
        folder = dav.root / who.user.split("@")[0]
        (folder / f".rds-upload-{name}.part").write_bytes(b"half")

    return Case(
        storage,
        Identity("alice@cloud.example.org", "tok-c-alice"),
        Identity("bob@cloud.example.org", "tok-c-bob"),
        plant,
    )


def _s3(tmp_path: Path, request: pytest.FixtureRequest) -> Case:
    from common.backends.s3 import S3Storage

    url: str = request.getfixturevalue("s3_url")
    bucket = f"contract-{uuid.uuid4().hex[:12]}"
    env = {
        "CONNECTOR_CONFIG": "",
        "CONNECTOR_STORAGE": "s3",
        "S3_ENDPOINT_URL": url,
        "S3_BUCKET": bucket,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": "contract-key",
        "S3_SECRET_ACCESS_KEY": "contract-secret",
        "S3_PART_SIZE": str(5 * MiB),
    }
    storage = S3Storage.from_settings(load_settings(env))
    storage.client.create_bucket(Bucket=bucket)

    def plant(who: Identity, name: str) -> None:
        # S3's upload in flight: a multipart upload never completed
        key = storage._base(who) + name
        storage.client.create_multipart_upload(Bucket=bucket, Key=key)

    return Case(storage, Identity("alice@cloud.example.org"), Identity("bob@x.org"), plant)


@pytest.fixture(params=BACKENDS)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return {"local": _local, "webdav": _webdav, "s3": _s3}[request.param](tmp_path, request)


def put(case: Case, who: Identity, path: str, data: bytes, *, sized: bool = True) -> Any:
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)] or [b""]
    upload = Upload(path, iter(chunks), size=len(data) if sized else None)
    return case.storage.store_file(who, path, upload)


def fill(case: Case, who: Identity, folder: str = "r") -> None:
    for name, data in NAMES.items():
        stored = put(case, who, f"{folder}/{name}", data)
        assert stored["filepath"] == f"/{folder}/{name}"
        assert stored["size"] == len(data)
        assert stored["checksum"] == "md5:" + hashlib.md5(data).hexdigest()


def test_bytes_round_trip_exactly_with_nested_and_odd_names(case: Case) -> None:
    fill(case, case.alice)
    for name, data in NAMES.items():
        assert read(case.storage, case.alice, f"r/{name}") == data
    assert (
        read(case.storage, case.alice, "r/sub dir/deeper/100% #1 &+=.bin", "bytes=10-19")
        == (NAMES["sub dir/deeper/100% #1 &+=.bin"][10:20])
    )


def test_an_upload_of_unknown_size_is_stored_whole(case: Case) -> None:
    data = os.urandom(MiB + 3)
    assert put(case, case.alice, "chunked/x.bin", data, sized=False)["size"] == len(data)
    assert read(case.storage, case.alice, "chunked/x.bin") == data


def test_listings_in_both_forms(case: Case) -> None:
    fill(case, case.alice)
    assert case.storage.list_files(case.alice, "r", 100) == sorted(NAMES)
    assert case.storage.list_files(case.alice, "", 100) == sorted(f"r/{n}" for n in NAMES)
    assert case.storage.list_folder(case.alice, "r") == [
        "/r/a.csv",
        "/r/empty.txt",
        "/r/sub dir/",
    ]
    assert case.storage.list_files(case.alice, "r/a.csv", 100) == []  # a file lists as []
    with pytest.raises(UnprocessableContent) as over:
        case.storage.list_files(case.alice, "r", 3)
    assert over.value.field == "filepath"


def test_a_missing_path_is_404_naming_filepath(case: Case) -> None:
    for call in (
        lambda: case.storage.list_files(case.alice, "nowhere", 100),
        lambda: case.storage.list_folder(case.alice, "nowhere"),
        lambda: read(case.storage, case.alice, "nowhere.txt"),
        lambda: case.storage.delete_file(case.alice, "nowhere.txt"),
        lambda: case.storage.move_file(case.alice, "nowhere.txt", "x.txt"),
    ):
        with pytest.raises(NotFound) as err:
            call()
        assert (err.value.status, err.value.field) == (404, "filepath")


def test_a_folder_is_no_file_and_the_root_takes_no_upload(case: Case) -> None:
    fill(case, case.alice)
    with pytest.raises(BadRequest) as err:
        read(case.storage, case.alice, "r/sub dir")
    assert err.value.field == "filepath"
    with pytest.raises(BadRequest):
        put(case, case.alice, "", b"x")


def test_move_and_delete(case: Case) -> None:
    fill(case, case.alice)
    data = NAMES["sub dir/naïve 文件 (1).txt"]
    moved = case.storage.move_file(case.alice, "r/sub dir/naïve 文件 (1).txt", "s/t/moved.txt")
    assert moved == {"filepath": "/s/t/moved.txt"}
    assert read(case.storage, case.alice, "s/t/moved.txt") == data
    assert "sub dir/naïve 文件 (1).txt" not in case.storage.list_files(case.alice, "r", 100)
    case.storage.delete_file(case.alice, "r/a.csv")
    assert "a.csv" not in case.storage.list_files(case.alice, "r", 100)
    case.storage.delete_file(case.alice, "r")  # a folder goes with everything in it
    with pytest.raises(NotFound):
        case.storage.list_files(case.alice, "r", 100)


def test_users_never_see_each_other(case: Case) -> None:
    fill(case, case.alice)
    put(case, case.bob, "r/bob.txt", b"bob's")
    assert case.storage.list_files(case.bob, "r", 100) == ["bob.txt"]
    with pytest.raises(NotFound):
        read(case.storage, case.bob, "r/a.csv")
    with pytest.raises(NotFound):
        case.storage.delete_file(case.bob, "r/a.csv")
    assert read(case.storage, case.alice, "r/a.csv") == NAMES["a.csv"]


def test_a_broken_upload_leaves_nothing(case: Case) -> None:
    def broken() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise ConnectionError("the caller went away")

    with pytest.raises((ConnectorError, ConnectionError)):
        case.storage.store_file(
            case.alice, "b/half.bin", Upload("half.bin", broken(), size=200_000)
        )
    put(case, case.alice, "b/whole.txt", b"ok")
    assert case.storage.list_files(case.alice, "b", 100) == ["whole.txt"]
    with pytest.raises(NotFound):
        read(case.storage, case.alice, "b/half.bin")


def test_an_upload_longer_or_shorter_than_announced_is_refused(case: Case) -> None:
    for data in (b"x" * 10, b"x" * 30):
        with pytest.raises(ConnectorError) as err:
            case.storage.store_file(case.alice, "c/liar.bin", Upload("l", iter([data]), size=20))
        assert 400 <= err.value.status < 500
    put(case, case.alice, "c/ok.txt", b"ok")
    assert case.storage.list_files(case.alice, "c", 100) == ["ok.txt"]


def test_uploads_in_flight_are_never_listed(case: Case) -> None:
    put(case, case.alice, "f.txt", b"f")
    case.plant_in_flight(case.alice, "inflight")
    assert case.storage.list_files(case.alice, "", 100) == ["f.txt"]
    assert case.storage.list_folder(case.alice, "") == ["/f.txt"]
