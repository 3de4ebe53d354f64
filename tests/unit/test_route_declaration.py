"""One declaration per route: the router, the OpenAPI document and the deploy all read it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from common import openapi
from common.routes import ROUTES, Sizing, route
from common.schemas import json_body, ok
from deploy.cloudfunctions import build, gateway
from deploy.cloudfunctions.table import SIZING
from local_router import build_app


def _operation_of(document: dict, r) -> dict:
    return document["paths"][r.path.replace(":path}", "}")][r.method.lower()]


def test_the_document_shows_each_route_as_declared() -> None:
    document = openapi.build_document()
    for r in ROUTES:
        op = _operation_of(document, r)
        assert (op["operationId"], op["summary"], op["tags"]) == (r.name, r.summary, [r.interface])
        assert op.get("requestBody") == r.body
        for code, answer in r.answers.items():
            assert {k: v for k, v in op["responses"][code].items() if k != "headers"} == answer
        for code in r.problems:
            assert op["responses"][str(code)] == {"$ref": f"#/components/responses/Problem{code}"}


def test_extra_problems_are_declared_on_their_route() -> None:
    assert route("files_upload").problems == (403, 507)
    assert route("storage_file_post").problems == (507,)
    assert "507" not in _operation_of(openapi.build_document(), route("files_list"))["responses"]


def test_the_deploy_sizes_each_function_as_declared(tmp_path: Path) -> None:
    assert {r.name: r.sizing for r in ROUTES} == SIZING
    plan = build.Plan(project="p", region="r", out=tmp_path, env={})
    for r in ROUTES:
        cmd = build.deploy_command(plan, r, tmp_path, tmp_path / "env.yaml")
        assert f"--memory={r.sizing.memory}" in cmd
        assert f"--timeout={r.sizing.timeout}s" in cmd


def test_a_changed_declaration_reaches_document_deploy_and_gateway(tmp_path: Path) -> None:
    changed = dataclasses.replace(
        route("file_get"),
        summary="Read one file",
        body=json_body({"extra": {"type": "string"}}),
        answers={"200": ok({"type": "string"}, "Changed")},
        sizing=Sizing("2Gi", 900),
        problems=(507,),
    )
    op = openapi._operation(changed)
    assert op["summary"] == "Read one file"
    assert "extra" in op["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert op["responses"]["200"]["description"] == "Changed"
    assert "507" in op["responses"]
    plan = build.Plan(project="p", region="r", out=tmp_path, env={})
    cmd = build.deploy_command(plan, changed, tmp_path, tmp_path / "env.yaml")
    assert "--memory=2Gi" in cmd and "--timeout=900s" in cmd
    assert gateway._operation(changed, "https://x")["x-google-backend"]["deadline"] == 900.0


def test_the_router_serves_each_declared_path_and_method(runtime) -> None:
    app = build_app(runtime)
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    for r in ROUTES:
        assert rules[r.name].rule == r.flask_path
        assert r.method in rules[r.name].methods
