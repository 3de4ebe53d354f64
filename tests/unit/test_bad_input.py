"""Every malformed or hostile request gets a 4xx problem+json that names the field at fault."""

from __future__ import annotations

import io

import pytest

from tests.conftest import uid

PROBLEM = "application/problem+json"


def problem(resp, status, field=None):
    assert resp.status_code == status, resp.data
    assert resp.content_type == PROBLEM
    body = resp.json
    assert body["status"] == status and body["title"] and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def test_unknown_route_is_404_problem(client) -> None:
    resp = client.get("/metadata/nothing")
    assert problem(resp, 404)["requestId"] == resp.headers["X-Request-ID"]


def test_wrong_method_is_405_problem_with_allow(client) -> None:
    resp = client.post("/storage/folder", json={"userId": uid()})
    problem(resp, 405)
    assert "GET" in resp.headers["Allow"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"userId": ""},
        {"userId": "None"},
        {"userId": None},
        {"userId": "port-local://"},
        {"userId": ["a"]},
        {"userId": "port-local://:tok"},
        {"userId": "alice\nX-Injected: 1"},
        {"userId": "a" * 5000},
        {"userId": 7},
        {"userId": {"user": "alice"}},
        {"userId": "Port-Local://alice:tok"},
    ],
)
def test_missing_or_unparsable_credentials_are_401(client, body) -> None:
    problem(client.get("/metadata/project", json=body), 401, "userId")


def test_userid_of_another_service_is_401(client) -> None:
    problem(
        client.get("/metadata/project", json={"userId": uid(service="port-owncloud")}),
        401,
        "userId",
    )


def test_malformed_json_is_400_naming_the_body(client) -> None:
    resp = client.post(
        "/metadata/project", data=b'{"userId": "port-', content_type="application/json"
    )
    problem(resp, 400, "body")


def test_json_that_is_not_an_object_is_400(client) -> None:
    problem(client.post("/metadata/project", json=["userId"]), 400, "body")


def test_wrong_content_type_is_415(client) -> None:
    resp = client.post("/metadata/project", data=b"userId=x", content_type="text/plain")
    problem(resp, 415, "Content-Type")


def test_form_encoded_bodies_are_accepted(client) -> None:
    resp = client.post("/metadata/project", data={"userId": uid()})
    assert resp.status_code == 200


def test_metadata_that_is_not_an_object_is_400(client) -> None:
    problem(
        client.post("/metadata/project", json={"userId": uid(), "metadata": [1]}), 400, "metadata"
    )
    problem(
        client.post("/metadata/project", json={"userId": uid(), "metadata": "{nope"}),
        400,
        "metadata",
    )


def test_body_over_the_limit_is_413(make_runtime) -> None:
    from local_router import build_app

    client = build_app(make_runtime(CONNECTOR_MAX_JSON_BYTES="2048")).test_client()
    resp = client.post("/metadata/project", json={"userId": uid(), "metadata": {"x": "y" * 5000}})
    problem(resp, 413, "body")


def test_unknown_project_is_404(client) -> None:
    problem(
        client.get("/metadata/project/0123456789abcdef", json={"userId": uid()}), 404, "projectId"
    )
    problem(client.get("/metadata/project/..", json={"userId": uid()}), 404)


def test_upload_without_file_part_is_400(client) -> None:
    pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
    resp = client.post(
        f"/metadata/project/{pid}/files",
        data={"userId": uid(), "filename": "a"},
        content_type="multipart/form-data",
    )
    problem(resp, 400, "file")
    problem(client.post(f"/metadata/project/{pid}/files", json={"userId": uid()}), 400, "file")


def test_upload_with_wrongly_named_part_is_400(client) -> None:
    pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
    resp = client.post(
        f"/metadata/project/{pid}/files",
        data={"userId": uid(), "filename": "a", "attachment": (io.BytesIO(b"x"), "a")},
        content_type="multipart/form-data",
    )
    problem(resp, 400, "attachment")


def test_truncated_multipart_stores_nothing(client) -> None:
    pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
    body = (
        b'--B\r\nContent-Disposition: form-data; name="userId"\r\n\r\n'
        + uid().encode()
        + b'\r\n--B\r\nContent-Disposition: form-data; name="filename"\r\n\r\nt.bin'
        + b'\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="t.bin"\r\n\r\n'
        + b"x" * 10000
    )
    resp = client.post(
        f"/metadata/project/{pid}/files", data=body, content_type="multipart/form-data; boundary=B"
    )
    problem(resp, 400, "body")
    assert client.get(f"/metadata/project/{pid}/files", json={"userId": uid()}).json == []


def test_storage_requests_without_filepath_are_400(client) -> None:
    problem(client.get("/storage/file", json={"userId": uid()}), 400, "filepath")
    problem(
        client.patch("/storage/file", json={"userId": uid(), "filepath": "/a"}), 400, "newfilepath"
    )


def test_unexpected_exceptions_become_a_generic_500_that_leaks_nothing(
    client, runtime, monkeypatch
) -> None:
    def boom(*_a, **_k):
        raise RuntimeError("secret-detail /etc/shadow token=abc")

    monkeypatch.setattr(runtime.archive, "list_projects", boom)
    resp = client.get("/metadata/project", json={"userId": uid()})
    body = problem(resp, 500)
    assert "secret-detail" not in resp.get_data(as_text=True)
    assert body["requestId"] == resp.headers["X-Request-ID"]


def test_a_body_without_length_is_refused_once_past_the_limit_not_read_whole() -> None:
    """A chunked body has no Content-Length to check first: reading stops past the limit."""
    from common.body import read_bounded
    from common.errors import PayloadTooLarge

    class Counting(io.BytesIO):
        read_bytes = 0

        def read(self, size=-1):
            data = super().read(size)
            Counting.read_bytes += len(data)
            return data

    with pytest.raises(PayloadTooLarge):
        read_bounded(Counting(b" " * (8 << 20)), 4096)
    assert Counting.read_bytes < 1024 * 1024
    assert read_bounded(io.BytesIO(b'{"a": 1}'), 4096) == b'{"a": 1}'


def test_a_chunked_body_over_the_limit_is_413(make_runtime) -> None:
    from local_router import build_app

    client = build_app(make_runtime(CONNECTOR_MAX_JSON_BYTES="4096")).test_client()
    resp = client.post(
        "/metadata/project",
        input_stream=io.BytesIO(b" " * (1 << 20)),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    problem(resp, 413, "body")


def test_all_multipart_fields_together_stay_within_the_body_limit(make_runtime) -> None:
    from local_router import build_app

    client = build_app(make_runtime(CONNECTOR_MAX_JSON_BYTES="4096")).test_client()
    data = {
        "userId": uid(),
        **{f"f{i}": "x" * 1000 for i in range(8)},
        "file": (io.BytesIO(b"x"), "a"),
    }
    resp = client.post(
        "/metadata/project/0123456789abcdef/files", data=data, content_type="multipart/form-data"
    )
    problem(resp, 413, "body")
