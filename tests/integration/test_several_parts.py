"""Several file parts in one request: stored where the backend can take them (``local``
writes each part to its end), a clear 400 naming the file where it needs each file's
exact size first (Zenodo, whose size hint is exact only for the body's last part)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from werkzeug.datastructures import MultiDict

from local_router import build_app
from tests.support.fake_zenodo import FakeZenodo
from tests.support.servers import ServerThread

USER_ID = "port-zenodo://alice@cloud.example.org:tok-parts"


@pytest.fixture
def zenodo(make_runtime) -> Iterator[tuple[FakeZenodo, object]]:
    fake = FakeZenodo()
    fake.add_token("tok-parts")
    server = ServerThread(fake.app).start()
    runtime = make_runtime(
        CONNECTOR_METADATA="zenodo",
        CONNECTOR_STORAGE="none",
        ZENODO_ADDRESS=server.url,
        ZENODO_OAUTH_CLIENT_ID="cid",
        ZENODO_OAUTH_CLIENT_SECRET="csecret-parts",
        RDS_OAUTH_REDIRECT_URI="https://rds.example/cb",
    )
    yield fake, build_app(runtime).test_client()
    server.stop()
    fake.close()


def two_parts(user_id: str) -> MultiDict:
    return MultiDict(
        [
            ("userId", user_id),
            ("filename", "a.txt"),
            ("file", (io.BytesIO(b"first"), "a.txt")),
            ("file", (io.BytesIO(b"second!"), "b.txt")),
        ]
    )


def test_zenodo_answers_several_parts_with_a_clear_400_and_stores_nothing(zenodo) -> None:
    fake, client = zenodo
    pid = client.post("/metadata/project", json={"userId": USER_ID}).json["projectId"]
    resp = client.post(
        f"/metadata/project/{pid}/files",
        data=two_parts(USER_ID),
        content_type="multipart/form-data",
    )
    assert resp.status_code == 400 and resp.json["field"] == "file"
    assert "one file part per request" in resp.json["detail"]
    assert resp.json["success"] is False and resp.json["notStored"] == ["a.txt"]
    assert [k for k in fake.depositions[int(pid)].files if k != "ro-crate-metadata.json"] == []
