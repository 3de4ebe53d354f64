"""Checks shared by the fileStorage backends' tests: the five /storage routes, a drained read."""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

from flask.testing import FlaskClient


def round_trip_through_routes(client: FlaskClient, who: str) -> None:
    """Upload, list, download (whole and ranged), move, delete, then a 404; asserts each."""
    data = os.urandom(300_000)
    resp = client.post(
        "/storage/file",
        data={"userId": who, "filepath": "/in/ü data.bin", "file": (io.BytesIO(data), "x")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200, resp.json
    assert resp.json["files"][0]["checksum"] == "md5:" + hashlib.md5(data).hexdigest()
    listed = client.get("/storage/folder", json={"userId": who, "filepath": "/in/"})
    assert listed.json == {"files": ["ü data.bin"]}
    children = {"userId": who, "filepath": "/", "recursive": "false"}
    assert client.get("/storage/folder", json=children).json == {"files": ["/in/"]}
    got = client.get("/storage/file", json={"userId": who, "filepath": "/in/ü data.bin"})
    assert got.status_code == 200 and got.data == data
    assert got.headers["Content-Length"] == str(len(data))
    ranged = client.get(
        "/storage/file",
        json={"userId": who, "filepath": "/in/ü data.bin"},
        headers={"Range": "bytes=10-19"},
    )
    assert ranged.status_code == 206 and ranged.data == data[10:20]
    assert ranged.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    moved = client.patch(
        "/storage/file",
        json={"userId": who, "filepath": "/in/ü data.bin", "newfilepath": "/out/d.bin"},
    )
    assert moved.json == {"success": True, "filepath": "/out/d.bin"}
    gone = client.delete("/storage/file", json={"userId": who, "filepath": "/out"})
    assert gone.json == {"success": True}
    missing = client.get("/storage/file", json={"userId": who, "filepath": "/out/d.bin"})
    assert missing.status_code == 404
    assert missing.content_type == "application/problem+json"
    assert missing.json["field"] == "filepath"


def read(storage: Any, who: Any, path: str, byte_range: str | None = None) -> bytes:
    """A backend's ``open_file`` drained and closed; its announced size must be the truth."""
    download = storage.open_file(who, path, byte_range)
    try:
        data = b"".join(download.chunks)
    finally:
        download.close()
    assert download.size == len(data)
    return data
