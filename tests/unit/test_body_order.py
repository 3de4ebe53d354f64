"""Who before what: caller auth before any body byte, fields before file bytes, and a body
that stops arriving (the idle timeout) as a 408 that leaves nothing stored.

The request body is a stream that records what was read from it and, where a test says
so, raises the ``TimeoutError`` a socket with a timeout raises when no byte arrives.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import pytest

from common.config import load_settings
from common.errors import ConfigError
from common.http import stream_response
from common.streams import Download
from local_router import build_app
from tests.conftest import uid

SECRET = "s3cret-for-callers-0123456789"
B = "B0undary"


class Feed:
    """``data``, then (when ``stall``) the socket's timeout; counts the bytes handed out."""

    def __init__(self, data: bytes, *, stall: bool = False) -> None:
        self._data = io.BytesIO(data)
        self.stall = stall
        self.given = 0
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        chunk = self._data.read(size)
        if not chunk and self.stall:
            raise TimeoutError("timed out")
        self.given += len(chunk)
        return chunk


class Socket:
    """The part of gunicorn's client socket the body touches: its timeout."""

    def __init__(self) -> None:
        self.timeout: float | None = None
        self.set: list[float | None] = []

    def gettimeout(self) -> float | None:
        return self.timeout

    def settimeout(self, value: float | None) -> None:
        self.set.append(value)
        self.timeout = value


def field(name: str, value: str) -> bytes:
    return f'--{B}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()


def file_head(filename: str) -> bytes:
    return (
        f'--{B}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


END = f"\r\n--{B}--\r\n".encode()


def post(client, path: str, feed: Feed, length: int | None, **kw: Any):
    """POST ``feed`` as the body: with ``Content-Length``, or chunked when ``length`` is None."""
    return client.post(path, **send(feed, length, f"multipart/form-data; boundary={B}"), **kw)


def send(feed: Feed, length: int | None, content_type: str) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "wsgi.input": feed,
        "CONTENT_LENGTH": str(length or ""),
        "CONTENT_TYPE": content_type,  # set here: the test client would put its own boundary
    }
    if length is None:
        environ.update({"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"})
    return {"environ_overrides": environ}


def new_project(client) -> str:
    return client.post("/metadata/project", json={"userId": uid()}).json["projectId"]


def stored_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.rglob("*") if p.is_file() and p.suffix == ".bin")


# -- caller auth before the body ----------------------------------------------------------
@pytest.mark.parametrize("chunked", [False, True])
def test_caller_auth_refuses_before_any_body_byte_is_read(make_runtime, chunked) -> None:
    client = build_app(
        make_runtime(CONNECTOR_CALLER_AUTH="bearer", CONNECTOR_CALLER_SECRET=SECRET)
    ).test_client()
    body = field("userId", uid()) + file_head("a.bin") + b"x" * 100_000 + END
    feed = Feed(body)
    headers = {
        "Authorization": "Bearer wrong",
        **({"Transfer-Encoding": "chunked"} if chunked else {}),
    }
    resp = post(
        client, "/metadata/project/p1/files", feed, None if chunked else len(body), headers=headers
    )
    assert resp.status_code == 401
    assert resp.json["field"] == "Authorization"
    assert feed.reads == 0  # not a byte: the answer goes out, the connection is closed
    assert resp.headers["Connection"] == "close"


# -- fields before file bytes -------------------------------------------------------------
def test_a_file_part_before_userid_is_a_400_and_nothing_is_stored_or_spooled(
    client, data_dir, monkeypatch
) -> None:
    pid = new_project(client)

    def no_spool(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a file part was spooled")

    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, no_spool)
    body = file_head("early.bin") + b"x" * 300_000 + b"\r\n" + field("userId", uid())[:-2] + END
    resp = post(client, f"/metadata/project/{pid}/files", Feed(body), len(body))
    assert resp.status_code == 400, resp.json
    assert resp.mimetype == "application/problem+json"
    assert resp.json["field"] == "file"
    assert "before the file part" in resp.json["detail"]
    assert "userId" in resp.json["detail"]
    assert stored_files(data_dir) == []
    assert client.get(f"/metadata/project/{pid}/files", json={"userId": uid()}).json == []


def test_fields_first_as_rds_sends_them_still_stream_straight_through(client) -> None:
    pid = new_project(client)
    body = (
        field("userId", uid()) + field("filename", "in/order.bin") + file_head("x") + b"abc" + END
    )
    resp = post(client, f"/metadata/project/{pid}/files", Feed(body), len(body))
    assert resp.status_code == 200, resp.json
    assert resp.json["files"][0]["filename"] == "in/order.bin"


# -- a body that stops arriving -----------------------------------------------------------
def test_a_stalled_file_part_is_a_408_naming_file_and_nothing_is_stored(client, data_dir) -> None:
    pid = new_project(client)
    head = field("userId", uid()) + field("filename", "stalled.bin") + file_head("stalled.bin")
    feed = Feed(head + b"y" * 200_000, stall=True)
    resp = post(client, f"/metadata/project/{pid}/files", feed, len(head) + 10_000_000)
    assert resp.status_code == 408, resp.json
    assert resp.mimetype == "application/problem+json"
    assert resp.json["field"] == "file"
    assert resp.json["notStored"] == ["stalled.bin"]
    assert resp.headers["Connection"] == "close"  # the rest is never waited for
    assert stored_files(data_dir) == []
    assert not [p for p in data_dir.rglob("*") if p.is_file() and ".tmp" in p.parts]
    assert client.get(f"/metadata/project/{pid}/files", json={"userId": uid()}).json == []


def test_a_stall_in_the_fields_is_a_408_naming_body(client) -> None:
    feed = Feed(field("userId", uid())[:20], stall=True)
    resp = post(client, "/metadata/project/p1/files", feed, 5000)
    assert resp.status_code == 408
    assert resp.json["field"] == "body"


def test_a_stalled_json_body_is_a_408_naming_body(client) -> None:
    feed = Feed(b'{"userId": ', stall=True)
    resp = client.post("/metadata/project", **send(feed, 500, "application/json"))
    assert resp.status_code == 408
    assert resp.json["field"] == "body"
    assert resp.headers["Connection"] == "close"


def test_the_idle_timeouts_are_set_on_gunicorns_socket_and_given_back(make_runtime) -> None:
    runtime = make_runtime(CONNECTOR_BODY_IDLE_TIMEOUT="7.5", CONNECTOR_SEND_IDLE_TIMEOUT="9")
    client = build_app(runtime).test_client()
    sock = Socket()
    resp = client.post(
        "/metadata/project",
        json={"userId": uid()},
        environ_overrides={"gunicorn.socket": sock},
    )
    assert resp.status_code == 200
    resp.get_data()
    resp.close()
    # the request's reads, as it was, the answer's sends, as it was
    assert sock.set == [7.5, None, 9.0, None]


def test_the_idle_timeout_setting_is_checked_at_start() -> None:
    assert load_settings({"CONNECTOR_CONFIG": ""}).body_idle_timeout == 60.0
    assert load_settings({"CONNECTOR_CONFIG": ""}).send_idle_timeout == 600.0
    with pytest.raises(ConfigError, match="CONNECTOR_BODY_IDLE_TIMEOUT"):
        load_settings({"CONNECTOR_CONFIG": "", "CONNECTOR_BODY_IDLE_TIMEOUT": "soon"})
    for bad in ("0", "nan", "inf"):  # a socket timeout of nan or inf means nothing sane
        with pytest.raises(ConfigError, match="CONNECTOR_SEND_IDLE_TIMEOUT"):
            load_settings({"CONNECTOR_CONFIG": "", "CONNECTOR_SEND_IDLE_TIMEOUT": bad})


def test_an_answer_cut_short_is_logged_and_a_bodiless_one_is_not(make_runtime, caplog) -> None:
    """``answer.unfinished`` marks answers whose body the client did not take; a 204 (a
    deleted project) has none to take, so it is never reported."""
    client = build_app(make_runtime()).test_client()
    user = uid()
    pid = client.post("/metadata/project", json={"userId": user}).get_json()["projectId"]
    with caplog.at_level("INFO", logger="rds.http"):
        listed = client.get(
            "/metadata/project",
            json={"userId": user},
            environ_overrides={"gunicorn.socket": Socket()},
            buffered=False,
        )
        listed.close()  # the client went away before reading the answer
        deleted = client.delete(
            f"/metadata/project/{pid}",
            json={"userId": user},
            environ_overrides={"gunicorn.socket": Socket()},
        )
        deleted.close()
    assert deleted.status_code == 204
    unfinished = [r.getMessage() for r in caplog.records if "answer.unfinished" in r.getMessage()]
    # the test client pulls the first chunk itself; the close comes before the body's end
    assert len(unfinished) == 1
    assert unfinished[0].startswith("answer.unfinished function=projects_list sent=")


def test_a_download_never_started_still_releases_its_source() -> None:
    """A HEAD (or a client gone before the first byte) never starts the body: the source
    behind it (an open file, an upstream answer) is released at the close all the same."""
    closed: list[bool] = []
    download = Download(
        chunks=iter([b"first", b"second"]), size=11, close=lambda: closed.append(True)
    )
    resp = stream_response(download)
    resp.close()
    assert closed == [True]
    download = Download(
        chunks=iter([b"first", b"second"]), size=11, close=lambda: closed.append(True)
    )
    resp = stream_response(download)
    assert b"".join(resp.response) == b"firstsecond"
    assert closed == [True, True]  # read to its end: released once, not twice
    resp.close()
    assert closed == [True, True]
