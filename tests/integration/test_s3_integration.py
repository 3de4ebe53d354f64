"""The ``s3`` backend against a real S3 endpoint: moto's server mode on loopback.

One moto server per module; each test works as its own user (its own key prefix), so
tests never see each other's objects.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from common.backends.base import LoginFailed
from common.backends.s3 import MiB, S3Storage
from common.config import load_settings
from common.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    NotFound,
    UnprocessableContent,
    UpstreamUnavailable,
)
from common.identity import Identity
from common.streams import Upload
from tests.conftest import uid
from tests.support.servers import ROOT, free_port
from tests.support.storage_routes import read, round_trip_through_routes

BUCKET = "rds-files"


def s3_env(url: str, **extra: str) -> dict[str, str]:
    return {
        "CONNECTOR_CONFIG": "",
        "CONNECTOR_METADATA": "none",
        "CONNECTOR_STORAGE": "s3",
        "CONNECTOR_SERVICENAME": "port-s3",
        "S3_ENDPOINT_URL": url,
        "S3_BUCKET": BUCKET,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": "test-key-id",
        "S3_SECRET_ACCESS_KEY": "test-secret",
        "S3_PART_SIZE": str(5 * MiB),
        **extra,
    }


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    S3Storage.from_settings(load_settings(s3_env(url))).client.create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture
def storage(s3_url: str) -> S3Storage:
    return S3Storage.from_settings(load_settings(s3_env(s3_url)))


@pytest.fixture
def who() -> Identity:
    return Identity(f"u{uuid.uuid4().hex[:8]}@cloud.example.org")


def put(storage: S3Storage, who: Identity, path: str, data: bytes, **kw) -> dict:
    chunks = [data[i : i + MiB] for i in range(0, len(data), MiB)] or [b""]
    return storage.store_file(who, path, Upload(path, iter(chunks), **kw))


def test_listing_names_nesting_markers_and_pages(storage: S3Storage, who: Identity) -> None:
    storage.page_size = 7  # force several pages of ListObjectsV2
    names = [f"f {i:02d} ü.txt" for i in range(20)] + ["naïve 文件.csv", "100% #1?.dat"]
    for name in names:
        put(storage, who, f"top/{name}", name.encode())
    put(storage, who, "top/sub dir/deeper/x.bin", b"x")
    put(storage, who, "top/empty.txt", b"")
    base = storage._base(who)
    storage.client.put_object(Bucket=BUCKET, Key=base + "top/marked/", Body=b"")  # console folder

    listed = storage.list_folder(who, "top")
    assert listed == sorted(
        [f"/top/{n}" for n in [*names, "empty.txt"]] + ["/top/sub dir/", "/top/marked/"]
    )
    assert storage.list_folder(who, "") == ["/top/"]
    assert storage.list_folder(who, "top/sub dir") == ["/top/sub dir/deeper/"]
    assert storage.list_folder(who, "top/marked") == []
    assert storage.list_folder(who, "top/naïve 文件.csv") == []  # a file lists as []
    # what RDS callers read: every file below, relative, no folders or folder markers
    assert storage.list_files(who, "top", 100) == sorted(
        [*names, "empty.txt", "sub dir/deeper/x.bin"]
    )
    assert storage.list_files(who, "", 100) == sorted(
        f"top/{n}" for n in [*names, "empty.txt", "sub dir/deeper/x.bin"]
    )
    assert storage.list_files(who, "top/naïve 文件.csv", 100) == []
    with pytest.raises(NotFound):
        storage.list_files(who, "no such folder", 100)
    with pytest.raises(UnprocessableContent) as over:
        storage.list_files(who, "top", 5)
    assert over.value.field == "filepath"
    assert read(storage, who, "top/100% #1?.dat") == b"100% #1?.dat"
    assert read(storage, who, "top/empty.txt") == b""
    assert storage.list_folder(Identity("nobody-yet"), "") == []  # the root always exists


def test_byte_exact_download_and_range(storage: S3Storage, who: Identity) -> None:
    data = os.urandom(2 * MiB + 5)
    assert put(storage, who, "d/blob.bin", data, size=len(data)) == {
        "filepath": "/d/blob.bin",
        "size": len(data),
        "checksum": "md5:" + hashlib.md5(data).hexdigest(),
    }
    assert read(storage, who, "d/blob.bin") == data
    part = storage.open_file(who, "d/blob.bin", "bytes=100-199")
    assert (part.status, part.size, part.content_range) == (206, 100, f"bytes 100-199/{len(data)}")
    assert b"".join(part.chunks) == data[100:200]
    part.close()
    assert read(storage, who, "d/blob.bin", f"bytes={len(data) + 9}-") == data


def test_multipart_upload_above_the_part_size(storage: S3Storage, who: Identity) -> None:
    data = os.urandom(11 * MiB + 3)  # three parts of 5 MiB, the last short
    stored = put(storage, who, "big/data.bin", data)  # size unknown: streamed as it comes
    assert stored["size"] == len(data)
    assert stored["checksum"] == "md5:" + hashlib.md5(data).hexdigest()
    head = storage.client.head_object(Bucket=BUCKET, Key=storage._base(who) + "big/data.bin")
    assert head["ETag"].strip('"').endswith("-3")  # really a multipart upload
    assert read(storage, who, "big/data.bin") == data


def test_a_failed_upload_leaves_no_object_and_no_parts(storage: S3Storage, who: Identity) -> None:
    def failing() -> Iterator[bytes]:
        for _ in range(7):
            yield b"z" * MiB
        raise OSError("client went away")

    with pytest.raises(OSError):
        storage.store_file(who, "broken.bin", Upload("broken.bin", failing()))
    with pytest.raises(BadRequest):  # shorter than announced, in the multipart path
        storage.store_file(who, "short.bin", Upload("s", iter([b"a" * 6 * MiB]), size=7 * MiB))
    with pytest.raises(BadRequest):  # and in the single-PUT path
        storage.store_file(who, "short2.bin", Upload("s", iter([b"abc"]), size=10))
    assert storage.list_folder(who, "") == []
    uploads = storage.client.list_multipart_uploads(Bucket=BUCKET, Prefix=storage._base(who))
    assert uploads.get("Uploads", []) == []


def test_store_rename_delete_round_trip(storage: S3Storage, who: Identity) -> None:
    put(storage, who, "a/one.txt", b"first")
    put(storage, who, "a/one.txt", b"second version")
    assert read(storage, who, "a/one.txt") == b"second version"
    assert storage.move_file(who, "a/one.txt", "b/c/two.txt") == {"filepath": "/b/c/two.txt"}
    with pytest.raises(NotFound):
        storage.list_folder(who, "a")  # S3 has no empty folders: moving the file removed it
    put(storage, who, "b/c/three.txt", b"3")
    with pytest.raises(Conflict) as taken:
        storage.move_file(who, "b/c/two.txt", "b/c/three.txt")
    assert taken.value.field == "newfilepath"
    assert storage.move_file(who, "b", "moved folder") == {"filepath": "/moved folder"}
    assert storage.list_folder(who, "moved folder/c") == [
        "/moved folder/c/three.txt",
        "/moved folder/c/two.txt",
    ]
    assert read(storage, who, "moved folder/c/two.txt") == b"second version"
    storage.delete_file(who, "moved folder/c/two.txt")
    assert storage.list_folder(who, "moved folder/c") == ["/moved folder/c/three.txt"]
    storage.delete_file(who, "moved folder")
    assert storage.list_folder(who, "") == []


def test_multipart_copy_above_the_copy_limit(storage: S3Storage, who: Identity) -> None:
    data = os.urandom(6 * MiB + 1)
    put(storage, who, "src.bin", data)
    storage.copy_limit = 5 * MiB  # stands in for S3's 5 GiB CopyObject limit
    storage.move_file(who, "src.bin", "dst.bin")
    head = storage.client.head_object(Bucket=BUCKET, Key=storage._base(who) + "dst.bin")
    assert head["ETag"].strip('"').endswith("-2")
    assert read(storage, who, "dst.bin") == data
    assert storage.list_folder(who, "") == ["/dst.bin"]


def test_missing_paths_folders_and_users_apart(storage: S3Storage, who: Identity) -> None:
    for call in (
        lambda: storage.list_folder(who, "nope"),
        lambda: storage.open_file(who, "nope.txt"),
        lambda: storage.delete_file(who, "nope.txt"),
        lambda: storage.move_file(who, "nope.txt", "x.txt"),
    ):
        with pytest.raises(NotFound) as err:
            call()
        assert err.value.field == "filepath"
    put(storage, who, "dir/x.txt", b"x")
    with pytest.raises(BadRequest):
        storage.open_file(who, "dir")
    with pytest.raises(Conflict):
        put(storage, who, "dir", b"a file over a folder")
    climber = Identity(f"../{who.user}")
    with pytest.raises(BadRequest) as err:  # a name that could climb never reaches a prefix
        storage.list_folder(climber, "")
    assert err.value.field == "userId"
    assert storage.list_folder(who, "") == ["/dir/"]


def test_endpoint_down_is_503_and_login_fails(who: Identity) -> None:
    dead = S3Storage.from_settings(load_settings(s3_env(f"http://127.0.0.1:{free_port()}")))
    with pytest.raises(UpstreamUnavailable):
        dead.list_folder(who, "")
    with pytest.raises(LoginFailed):
        dead.login()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"S3_BUCKET": ""}, "S3_BUCKET"),
        ({"S3_PART_SIZE": str(5 * MiB - 1)}, "S3_PART_SIZE"),
        ({"S3_SECRET_ACCESS_KEY": ""}, "S3_SECRET_ACCESS_KEY"),
        ({"S3_PREFIX": "all/"}, "S3_PREFIX"),
        ({"S3_PREFIX": "{user}/{other}/"}, "S3_PREFIX"),
    ],
)
def test_bad_settings_name_the_variable(extra: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        S3Storage.from_settings(load_settings(s3_env("http://127.0.0.1:1", **extra)))


def test_the_storage_routes_through_the_router(s3_url, make_runtime) -> None:
    from local_router import build_app

    runtime = make_runtime(**s3_env(s3_url))
    runtime.storage.login()
    assert runtime.storage.registration_fields() == {
        "credentials": {"userId": True, "password": False}
    }
    client = build_app(runtime).test_client()
    who = uid(f"r{uuid.uuid4().hex[:6]}@cloud.example.org", "ignored", "port-s3")
    round_trip_through_routes(client, who)


def test_boto3_is_imported_only_when_s3_is_configured(tmp_path) -> None:
    code = (
        "import sys; from common.config import load_settings; from common.runtime import Runtime;"
        "import local_router;"
        "Runtime.build(load_settings({'CONNECTOR_CONFIG': '', 'CONNECTOR_DATA_DIR': sys.argv[1]}));"
        "print('boto3' in sys.modules, 'botocore' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "False"]


def test_a_key_over_s3s_limit_is_the_callers_400(storage: S3Storage, who: Identity) -> None:
    long_path = (
        "/".join(["d" * 200] * 5) + "/f.txt"
    )  # valid for the paths module, > 1024 with prefix
    with pytest.raises(BadRequest) as err:
        put(storage, who, long_path, b"x")
    assert err.value.field == "filepath"
    put(storage, who, "short.txt", b"x")
    with pytest.raises(BadRequest) as err:
        storage.move_file(who, "short.txt", long_path)
    assert err.value.field == "newfilepath"
