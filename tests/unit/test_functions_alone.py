"""Each function answers through functions_framework.create_app alone, as a cloud deploy runs it."""

from __future__ import annotations

import functions_framework
import pytest

from common.routes import ROUTES
from local_router import FUNCTIONS
from tests.conftest import uid


def alone(name):
    return functions_framework.create_app(name, str(FUNCTIONS / name / "main.py")).test_client()


@pytest.mark.parametrize("r", ROUTES, ids=lambda r: r.name)
def test_each_function_refuses_a_bad_request_with_a_problem(runtime, r) -> None:
    client = alone(r.name)
    path = r.path.replace("{project_id}", "0123456789abcdef").replace("{file_id:path}", "a/b.txt")
    wrong = "GET" if r.method != "GET" else "POST"
    resp = client.open(path, method=wrong, json={"userId": uid()})
    assert resp.status_code == 405 and resp.content_type == "application/problem+json"
    if r.name != "init":
        resp = client.open(path, method=r.method, json={})
        assert resp.status_code in (400, 401), resp.data
        assert resp.content_type == "application/problem+json"


def test_the_workflow_through_single_function_apps(runtime) -> None:
    created = alone("project_create").post("/metadata/project", json={"userId": uid()})
    assert created.status_code == 200
    pid = created.json["projectId"]
    resp = alone("files_upload").post(
        f"/metadata/project/{pid}/files",
        data={
            "userId": uid(),
            "filename": "x/y.txt",
            "file": (__import__("io").BytesIO(b"hi"), "y.txt"),
        },
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200, resp.json
    listed = alone("files_list").get(f"/metadata/project/{pid}/files", json={"userId": uid()})
    assert [f["filename"] for f in listed.json] == ["x/y.txt"]
    published = alone("project_publish").put(f"/metadata/project/{pid}", json={"userId": uid()})
    assert published.status_code == 200 and "DOI" in published.json
    assert alone("init").post("/init").json["registration"] == "skipped"


def test_a_function_behind_a_gateway_prefix_still_finds_its_parameters(runtime) -> None:
    pid = (
        alone("project_create").post("/metadata/project", json={"userId": uid()}).json["projectId"]
    )
    resp = alone("project_get").get(
        f"/rds-project-get/metadata/project/{pid}", json={"userId": uid()}
    )
    assert resp.status_code == 200
