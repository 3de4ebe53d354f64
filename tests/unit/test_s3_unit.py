"""The ``s3`` backend's edges without a server: error mapping, part streaming, Part reads."""

from __future__ import annotations

import hashlib
import io
import weakref
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from common.backends import s3
from common.backends.s3 import MiB, Part, S3Storage, map_error
from common.errors import (
    Forbidden,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from common.identity import Identity
from common.streams import Upload


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "GetObject")


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (client_error("NoSuchKey"), NotFound),
        (client_error("404"), NotFound),
        (client_error("AccessDenied"), Forbidden),
        (client_error("QuotaExceeded"), InsufficientStorage),
        (client_error("EntityTooLarge"), PayloadTooLarge),
        (client_error("SlowDown"), UpstreamUnavailable),
        (client_error("NoSuchBucket"), UpstreamError),
        (client_error("SomethingNew"), UpstreamError),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), UpstreamUnavailable),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:9"), UpstreamTimeout),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), UpstreamTimeout),
        (NoCredentialsError(), UpstreamError),
    ],
)
def test_botocore_errors_become_problems(exc: Exception, error: type) -> None:
    assert type(map_error(exc, "/x")) is error


class RecordingClient:
    """Stands in for boto3's client: records its calls and the bytes it received."""

    def __init__(self, fail_at_part: int | None = None) -> None:
        self.fail_at_part = fail_at_part
        self.received = hashlib.md5()
        self.calls: list[str] = []

    def _see(self, body: Part) -> None:
        self.received.update(body.read())

    def put_object(self, **kw: Any) -> dict:
        self.calls.append("put")
        self._see(kw["Body"])
        return {"ETag": '"e0"'}  # S3 confirms every write with one

    def create_multipart_upload(self, **kw: Any) -> dict:
        self.calls.append("create")
        return {"UploadId": "u1"}

    def upload_part(self, **kw: Any) -> dict:
        self.calls.append(f"part{kw['PartNumber']}")
        if kw["PartNumber"] == self.fail_at_part:
            raise client_error("InternalError")
        self._see(kw["Body"])
        return {"ETag": f'"e{kw["PartNumber"]}"'}

    def complete_multipart_upload(self, **kw: Any) -> dict:
        self.calls.append("complete")
        return {}

    def abort_multipart_upload(self, **kw: Any) -> dict:
        self.calls.append("abort")
        return {}

    def list_objects_v2(self, **kw: Any) -> dict:
        return {"KeyCount": 0, "Name": kw["Bucket"]}  # S3 names the bucket in every listing


def chunks(total: int, size: int = 256 * 1024):
    data = bytes(range(256)) * (size // 256)
    for start in range(0, total, size):
        yield data[: min(size, total - start)]


def test_parts_stream_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    alive: weakref.WeakSet[Part] = weakref.WeakSet()
    most = [0]

    class CountedPart(Part):
        def append(self, chunk: bytes) -> None:
            alive.add(self)
            most[0] = max(most[0], len(alive))
            super().append(chunk)

    monkeypatch.setattr(s3.client, "Part", CountedPart)
    client = RecordingClient()
    storage = S3Storage(client, "b", part_size=5 * MiB)
    total = 17 * MiB + 5
    expected = hashlib.md5(b"".join(chunks(total))).hexdigest()
    stored = storage.store_file(Identity("u"), "f.bin", Upload("f", chunks(total)))
    assert stored["checksum"] == f"md5:{expected}" == f"md5:{client.received.hexdigest()}"
    assert client.calls == ["create", "part1", "part2", "part3", "part4", "complete"]
    assert most[0] == 1  # a part is filled only once the previous one is gone


@pytest.mark.parametrize(("total", "calls"), [(0, ["put"]), (5 * MiB, ["put"])])
def test_a_file_within_one_part_is_one_put(total: int, calls: list[str]) -> None:
    client = RecordingClient()
    S3Storage(client, "b", part_size=5 * MiB).store_file(
        Identity("u"), "f.bin", Upload("f", chunks(total), size=total)
    )
    assert client.calls == calls


def test_a_refused_part_aborts_the_upload() -> None:
    client = RecordingClient(fail_at_part=2)
    with pytest.raises(UpstreamUnavailable):
        S3Storage(client, "b", part_size=5 * MiB).store_file(
            Identity("u"), "f.bin", Upload("f", chunks(12 * MiB))
        )
    assert client.calls == ["create", "part1", "part2", "abort"]


def test_too_many_parts_is_413_and_aborts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3.storage, "MAX_PARTS", 2)
    client = RecordingClient()
    with pytest.raises(PayloadTooLarge):
        S3Storage(client, "b", part_size=5 * MiB).store_file(
            Identity("u"), "f.bin", Upload("f", chunks(12 * MiB))
        )
    assert client.calls[-1] == "abort" and "complete" not in client.calls


def test_part_reads_and_seeks_like_a_file() -> None:
    part = Part()
    for piece in (b"abc", b"", b"defgh", b"ij"):
        part.append(piece)
    assert len(part) == 10
    assert part.read(4) == b"abcd"
    assert part.read() == b"efghij"
    part.seek(-3, io.SEEK_END)
    assert part.read(2) == b"hi"
    part.seek(0)
    buffered = io.BufferedReader(part, buffer_size=3)
    assert buffered.read() == b"abcdefghij"
