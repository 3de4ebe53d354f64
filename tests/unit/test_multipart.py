"""The streaming multipart parser: fields, file parts as chunks, exact size of the last part."""

from __future__ import annotations

import io

import pytest
import requests

from common.errors import BadRequest
from common.multipart import MultipartReader
from common.streams import Meter

PAYLOAD = b"head\r\n--not-the-boundary\r\n" + bytes(range(256)) * 4000


def encode(data: dict, files: dict) -> tuple[bytes, str]:
    req = requests.Request("POST", "http://x/", data=data, files=files).prepare()
    return req.body, req.headers["Content-Type"].split("boundary=")[1]


def read_all(body: bytes, boundary: str, chunk: int) -> tuple[dict, list]:
    reader = MultipartReader(io.BytesIO(body), boundary, len(body), chunk_size=chunk)
    fields, files = {}, []
    while (part := reader.next_part()) is not None:
        if part.is_file:
            meter = Meter(reader.iter_data())
            files.append((part.name, part.filename, part.size_hint, b"".join(meter)))
        else:
            fields[part.name] = reader.read_value()
    return fields, files


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096, 1 << 20])
def test_fields_then_file_at_any_chunk_size(chunk) -> None:
    body, b = encode(
        {"userId": "port-local://a:b", "filename": "dir/ä.bin"},
        {"file": ("ä.bin", io.BytesIO(PAYLOAD))},
    )
    fields, files = read_all(body, b, chunk)
    assert fields == {"userId": "port-local://a:b", "filename": "dir/ä.bin"}
    assert files == [("file", "ä.bin", len(PAYLOAD), PAYLOAD)]


def test_empty_file_part() -> None:
    body, b = encode({"userId": "u"}, {"file": ("e.txt", io.BytesIO(b""))})
    assert read_all(body, b, 5)[1] == [("file", "e.txt", 0, b"")]


def test_size_hint_is_wrong_for_a_part_that_is_not_last_and_meter_says_so() -> None:
    body, b = encode({}, {"file": ("a", io.BytesIO(b"abc")), "other": ("b", io.BytesIO(b"xy"))})
    reader = MultipartReader(io.BytesIO(body), b, len(body))
    part = reader.next_part()
    with pytest.raises(BadRequest, match="announced"):
        b"".join(Meter(reader.iter_data(), part.size_hint))


def test_truncated_body_is_400() -> None:
    body, b = encode({"userId": "u"}, {"file": ("a", io.BytesIO(PAYLOAD))})
    reader = MultipartReader(io.BytesIO(body[:-100]), b, None)
    reader.next_part()
    reader.read_value()
    reader.next_part()
    with pytest.raises(BadRequest, match="ends inside"):
        b"".join(reader.iter_data())


@pytest.mark.parametrize("body", [b"garbage without boundary", b"--B\r\nno-blank-line", b"--Bxx"])
def test_malformed_bodies_are_400(body) -> None:
    reader = MultipartReader(io.BytesIO(body), "B", len(body))
    with pytest.raises(BadRequest):
        reader.next_part()


def test_preamble_before_first_boundary_is_skipped() -> None:
    body = b'preamble\r\n--B\r\nContent-Disposition: form-data; name="k"\r\n\r\nv\r\n--B--\r\n'
    reader = MultipartReader(io.BytesIO(body), "B", len(body))
    part = reader.next_part()
    assert (part.name, reader.read_value()) == ("k", "v")
    assert reader.next_part() is None


def test_a_stream_longer_than_announced_fails_before_its_last_announced_byte_goes_out() -> None:
    """A sink that announced the size must never see a complete body of a longer stream."""
    sent = []
    with pytest.raises(BadRequest, match="longer"):
        for chunk in Meter(iter([b"abc", b"de", b"f"]), 5):
            sent.append(chunk)
    assert b"".join(sent) == b"abc"  # "de" (reaching 5 bytes) was held back


def test_no_final_crlf_makes_the_hint_short_and_the_meter_refuses_it() -> None:
    body, b = encode({"userId": "u"}, {"file": ("a", io.BytesIO(PAYLOAD))})
    assert body.endswith(b"--\r\n")
    body = body[:-2]  # the closing CRLF is optional (RFC 2046)
    reader = MultipartReader(io.BytesIO(body), b, len(body))
    reader.next_part()
    reader.read_value()
    part = reader.next_part()
    assert part.size_hint == len(PAYLOAD) - 2
    sent = 0
    with pytest.raises(BadRequest):
        for chunk in Meter(reader.iter_data(), part.size_hint):
            sent += len(chunk)
    assert sent < part.size_hint
