"""The ``webdav`` backend against a real WebDAV server (wsgidav on loopback, temp folder).

One server per module serves alice's folder in both EFSS path styles, so every test runs
for ownCloud (``/remote.php/webdav``) and Nextcloud (``/remote.php/dav/files/alice``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.backends.webdav import WebDAVStorage
from common.errors import (
    BadRequest,
    Conflict,
    ConnectorError,
    Forbidden,
    NotFound,
    Unauthorized,
    UnprocessableContent,
)
from common.identity import Identity
from common.streams import Upload
from tests.conftest import uid
from tests.support.servers import ServerThread
from tests.support.storage_routes import read, round_trip_through_routes
from tests.support.token_storage import TokenStorageDouble
from tests.support.webdav import WebDAVServer

USER = "alice@cloud.example.org"
TOKEN = "tok-alice"
APP_PASSWORD = "app-pass-alice"
ALICE = Identity(USER, TOKEN)


@pytest.fixture(scope="module")
def dav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDAVServer]:
    root = tmp_path_factory.mktemp("dav")
    server = WebDAVServer(
        root, {"alice": (TOKEN, APP_PASSWORD), "bob": ("tok-bob", "app-pass-bob")}
    ).start()
    yield server
    server.stop()


@pytest.fixture
def home(dav: WebDAVServer) -> Iterator[Path]:
    """alice's folder on the server's disk, emptied after each test."""
    folder = dav.root / "alice"
    yield folder
    for child in folder.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    dav.auth.bearer_enabled = True


@pytest.fixture(params=["owncloud", "nextcloud"])
def storage(request: pytest.FixtureRequest, dav: WebDAVServer, home: Path) -> WebDAVStorage:
    return WebDAVStorage(dav.url, system=request.param, public_url="https://cloud.example.org")


def put(storage: WebDAVStorage, path: str, data: bytes, who: Identity = ALICE, **kw) -> dict:
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    return storage.store_file(who, path, Upload(path, iter(chunks), **kw))


def test_listing_shapes_names_and_nesting(storage: WebDAVStorage, home: Path) -> None:
    names = ["with space.txt", "naïve 文件.csv", "100% #1.dat", "a&b+c=d.txt"]
    for name in names:
        put(storage, f"top/{name}", name.encode())
    put(storage, "top/sub dir/deeper/x.bin", b"x")
    put(storage, "top/empty.txt", b"")
    (home / "top" / "empty folder").mkdir()

    listed = storage.list_folder(ALICE, "top")
    assert listed == sorted(
        [f"/top/{n}" for n in [*names, "empty.txt"]] + ["/top/sub dir/", "/top/empty folder/"]
    )
    assert storage.list_folder(ALICE, "") == ["/top/"]
    assert storage.list_folder(ALICE, "top/sub dir") == ["/top/sub dir/deeper/"]
    assert storage.list_folder(ALICE, "top/empty folder") == []
    assert storage.list_folder(ALICE, "top/naïve 文件.csv") == []  # a file lists as []
    # what RDS callers read: every file below, relative, no folders (empty ones vanish)
    (home / "top" / "sub dir" / ".rds-upload-0a1b.part").write_bytes(b"half")
    assert storage.list_files(ALICE, "top", 100) == sorted(
        [*names, "empty.txt", "sub dir/deeper/x.bin"]
    )
    assert storage.list_files(ALICE, "", 100) == sorted(
        f"top/{n}" for n in [*names, "empty.txt", "sub dir/deeper/x.bin"]
    )
    assert storage.list_files(ALICE, "top/naïve 文件.csv", 100) == []
    with pytest.raises(UnprocessableContent) as over:
        storage.list_files(ALICE, "top", 5)
    assert over.value.field == "filepath"
    for name in names:
        assert read(storage, ALICE, f"top/{name}") == name.encode()
    assert read(storage, ALICE, "top/empty.txt") == b""
    assert (home / "top" / "empty.txt").stat().st_size == 0


def test_a_folder_of_1000_entries(storage: WebDAVStorage, home: Path) -> None:
    big = home / "many"
    big.mkdir()
    for i in range(1000):
        (big / f"f {i:04d} ü.txt").write_bytes(b"")
    listed = storage.list_folder(ALICE, "many")
    assert len(listed) == 1000
    assert listed[0] == "/many/f 0000 ü.txt" and listed[-1] == "/many/f 0999 ü.txt"


def test_byte_exact_download_and_range(storage: WebDAVStorage, home: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    stored = put(storage, "data/blob.bin", data, size=len(data))
    assert stored == {
        "filepath": "/data/blob.bin",
        "size": len(data),
        "checksum": "md5:" + hashlib.md5(data).hexdigest(),
    }
    assert (home / "data" / "blob.bin").read_bytes() == data
    assert read(storage, ALICE, "data/blob.bin") == data
    part = storage.open_file(ALICE, "data/blob.bin", "bytes=100-199")
    assert (part.status, part.size, part.content_range) == (206, 100, f"bytes 100-199/{len(data)}")
    assert b"".join(part.chunks) == data[100:200]
    part.close()
    assert read(storage, ALICE, "data/blob.bin", "bytes=-10") == data[-10:]
    # an unsatisfiable range answers the whole file, like the local backend
    assert read(storage, ALICE, "data/blob.bin", f"bytes={len(data) + 5}-") == data


def test_store_overwrite_rename_delete_round_trip(storage: WebDAVStorage, home: Path) -> None:
    put(storage, "a/one.txt", b"first")
    put(storage, "a/one.txt", b"second version")
    assert read(storage, ALICE, "a/one.txt") == b"second version"
    assert storage.move_file(ALICE, "a/one.txt", "b/c/two.txt") == {"filepath": "/b/c/two.txt"}
    assert storage.list_folder(ALICE, "a") == []
    assert read(storage, ALICE, "b/c/two.txt") == b"second version"
    put(storage, "b/c/three.txt", b"3")
    with pytest.raises(Conflict) as taken:
        storage.move_file(ALICE, "b/c/two.txt", "b/c/three.txt")
    assert taken.value.field == "newfilepath"
    assert read(storage, ALICE, "b/c/three.txt") == b"3"  # never overwritten by a move
    assert storage.move_file(ALICE, "b", "moved folder") == {"filepath": "/moved folder"}
    assert storage.list_folder(ALICE, "moved folder/c") == [
        "/moved folder/c/three.txt",
        "/moved folder/c/two.txt",
    ]
    storage.delete_file(ALICE, "moved folder/c/two.txt")
    assert storage.list_folder(ALICE, "moved folder/c") == ["/moved folder/c/three.txt"]
    storage.delete_file(ALICE, "moved folder")
    assert storage.list_folder(ALICE, "") == ["/a/"]
    assert not any(p.name.startswith(".rds-upload-") for p in home.rglob("*"))


def test_missing_paths_are_404(storage: WebDAVStorage) -> None:
    for call in (
        lambda: storage.list_folder(ALICE, "nope"),
        lambda: storage.open_file(ALICE, "nope.txt"),
        lambda: storage.delete_file(ALICE, "nope.txt"),
        lambda: storage.move_file(ALICE, "nope.txt", "x.txt"),
    ):
        with pytest.raises(NotFound) as err:
            call()
        assert err.value.field == "filepath"


def test_wrong_token_is_401(storage: WebDAVStorage) -> None:
    intruder = Identity(USER, "stolen-or-expired")
    with pytest.raises(Unauthorized):
        storage.list_folder(intruder, "")
    with pytest.raises(Unauthorized):
        put(storage, "x.txt", b"x", who=intruder)
    with pytest.raises(Unauthorized):
        storage.list_folder(Identity(USER, None), "")


def test_nextcloud_path_of_another_user_is_403(dav: WebDAVServer, home: Path) -> None:
    storage = WebDAVStorage(dav.url, system="nextcloud", user_id="keep")
    with pytest.raises(Forbidden):  # bob's token on alice's path
        storage.list_folder(Identity("alice", "tok-bob"), "")


def test_folder_and_file_conflicts(storage: WebDAVStorage, home: Path) -> None:
    put(storage, "f.txt", b"file")
    with pytest.raises(Conflict):
        put(storage, "f.txt/inner.txt", b"x")
    (home / "d").mkdir()
    with pytest.raises(Conflict):
        put(storage, "d", b"x")
    with pytest.raises(BadRequest):
        storage.open_file(ALICE, "d")
    with pytest.raises(BadRequest):
        storage.delete_file(ALICE, "")


def test_a_broken_upload_leaves_nothing(storage: WebDAVStorage, home: Path) -> None:
    put(storage, "keep.txt", b"old content")

    def failing() -> Iterator[bytes]:
        yield b"x" * 100_000
        raise OSError("client went away")

    # the client's error, or -- when wsgidav answers first -- the server's refusal: either
    # way a failure, and what matters is below: the old file is kept and nothing is left
    with pytest.raises((OSError, ConnectorError)):
        storage.store_file(ALICE, "keep.txt", Upload("keep.txt", failing()))
    with pytest.raises(BadRequest):  # shorter than announced
        storage.store_file(ALICE, "new.txt", Upload("new.txt", iter([b"abc"]), size=10))
    assert read(storage, ALICE, "keep.txt") == b"old content"
    assert sorted(p.name for p in home.iterdir()) == ["keep.txt"]


def test_auto_auth_falls_back_to_basic_and_remembers(dav: WebDAVServer, home: Path) -> None:
    storage = WebDAVStorage(
        dav.url, system="nextcloud", auth="auto", public_url="https://cloud.example.org"
    )
    app_user = Identity(USER, APP_PASSWORD)  # an app password, not an OAuth token
    dav.auth.seen.clear()
    put(storage, "p.txt", b"by app password", who=app_user)
    schemes = [s for (_, _, s) in dav.auth.seen]
    assert schemes[:2] == ["bearer", "basic"]
    assert all(s == "basic" for s in schemes[2:])  # the PUT went straight as Basic
    assert storage.list_folder(app_user, "") == ["/p.txt"]
    dav.auth.bearer_enabled = False
    basic = WebDAVStorage(dav.url, system="owncloud", auth="basic")
    assert basic.list_folder(Identity("alice", APP_PASSWORD), "") == ["/p.txt"]
    with pytest.raises(Unauthorized):
        WebDAVStorage(dav.url, system="owncloud").list_folder(ALICE, "")


def test_the_storage_routes_through_the_router(dav, home, make_runtime) -> None:
    from local_router import build_app

    runtime = make_runtime(
        CONNECTOR_METADATA="none",
        CONNECTOR_STORAGE="webdav",
        CONNECTOR_SERVICENAME="port-owncloud",
        EFSS_SYSTEM="nextcloud",
        OWNCLOUD_INSTALLATION_URL="https://cloud.example.org",
        OWNCLOUD_INTERNAL_INSTALLATION_URL=dav.url,
        OWNCLOUD_OAUTH_CLIENT_ID="client-id",
        OWNCLOUD_OAUTH_CLIENT_SECRET="client-secret",
    )
    client = build_app(runtime).test_client()
    who = uid(USER, TOKEN, "port-owncloud")
    round_trip_through_routes(client, who)
    bad = client.get("/storage/folder", json={"userId": uid(USER, "wrong", "port-owncloud")})
    assert bad.status_code == 401 and "wrong" not in bad.get_data(as_text=True)


def test_init_registers_oauth_and_a_bare_user_id_gets_its_token(dav, home, make_runtime) -> None:
    from common.init import run_init
    from local_router import build_app

    ts = TokenStorageDouble()
    ts_server = ServerThread(ts.app).start()
    try:
        runtime = make_runtime(
            CONNECTOR_METADATA="none",
            CONNECTOR_STORAGE="webdav",
            CONNECTOR_SERVICENAME="port-owncloud",
            EFSS_SYSTEM="owncloud",
            OWNCLOUD_INSTALLATION_URL=dav.url,
            OWNCLOUD_OAUTH_CLIENT_ID="client-id",
            OWNCLOUD_OAUTH_CLIENT_SECRET="client-secret",
            CENTRAL_SERVICE_TOKEN_STORAGE=ts_server.url,
            USE_CASE_SERVICE_PORT_SERVICE=ts_server.url,
        )
        assert run_init(runtime)["registration"] == "registered"
        assert ts.services["port-owncloud"]["type"] == "OAuth2Service"
        entry = ts.services["port-owncloud"]["data"]
        assert entry["client_id"] == "client-id"
        assert entry["refresh_url"] == dav.url + "/index.php/apps/oauth2/api/v1/token"
        ts.tokens[(USER, "port-owncloud")] = TOKEN
        put(runtime.storage, "bare.txt", b"found via the Port service")
        client = build_app(runtime).test_client()
        listed = client.get("/storage/folder", json={"userId": USER, "filepath": "/"})
        assert listed.status_code == 200 and listed.json == {"files": ["bare.txt"]}
        unknown = client.get("/storage/folder", json={"userId": "carol@elsewhere.org"})
        assert unknown.status_code == 401
    finally:
        ts_server.stop()


def test_uploads_in_flight_are_hidden_from_listings(storage: WebDAVStorage, home: Path) -> None:
    put(storage, "done.txt", b"done")
    (home / ".rds-upload-0123abcd.part").write_bytes(b"half a fi")
    assert storage.list_folder(ALICE, "") == ["/done.txt"]
