"""The OpenAPI document and the route table (and the router built from it) never disagree."""

from __future__ import annotations

from pathlib import Path

import yaml
from openapi_spec_validator import validate

from common.openapi import ROUTER_PATHS, build_document, render
from common.routes import ROUTES
from local_router import build_app

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
METHODS = {"get", "post", "put", "patch", "delete"}


def operations(document: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def flask_operations(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
        out |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def test_committed_document_is_the_generated_one() -> None:
    assert COMMITTED.read_text("utf-8") == render(), (
        "docs/openapi.yaml is stale: run `python -m common.openapi > docs/openapi.yaml`"
    )


def test_document_is_valid_openapi_3_1() -> None:
    validate(yaml.safe_load(COMMITTED.read_text("utf-8")))


def test_every_route_is_documented_with_its_method_and_nothing_else() -> None:
    expected = {(r.method, r.path.replace(":path}", "}")) for r in ROUTES}
    expected |= {(method, path) for method, path, _ in ROUTER_PATHS}
    assert operations(build_document()) == expected
    ids = [op["operationId"] for item in build_document()["paths"].values() for op in item.values()]
    assert sorted(r.name for r in ROUTES) == sorted(i for i in ids if not i.startswith("router_"))


def test_the_router_serves_exactly_the_documented_operations(client) -> None:
    served = client.get("/openapi.yaml")
    assert served.status_code == 200
    assert served.content_type.startswith("application/yaml")
    document = yaml.safe_load(served.data)
    assert served.get_data(as_text=True) == COMMITTED.read_text("utf-8")
    assert operations(document) == flask_operations(client.application)


def test_a_deployment_documents_only_its_interfaces(make_runtime) -> None:
    app = build_app(make_runtime(CONNECTOR_STORAGE="none"))
    document = yaml.safe_load(app.test_client().get("/openapi.yaml").data)
    assert not any(path.startswith("/storage") for path in document["paths"])
    assert operations(document) == flask_operations(app)


def test_every_deviation_from_upstream_is_marked() -> None:
    text = COMMITTED.read_text("utf-8")
    # the ones the protocol page lists: token in userId, DOI answer, `file` part, passive form
    for marker in ("OAuth access token", "upstream says 204", "part `files`", "passive mode"):
        assert marker in text
    assert text.count("x-rds-deviation") >= 6
    publish = build_document()["paths"]["/metadata/project/{project_id}"]["put"]
    assert "x-rds-deviation" in publish["responses"]["200"]
    assert "204" not in publish["responses"]


def test_error_answers_are_problem_json() -> None:
    document = build_document()
    for item in document["paths"].values():
        for op in item.values():
            for code, answer in op["responses"].items():
                if int(code) >= 400:
                    ref = answer["$ref"].rsplit("/", 1)[-1]
                    content = document["components"]["responses"][ref]["content"]
                    assert list(content) == ["application/problem+json"]


def test_the_served_document_matches_its_own_declared_answer(client) -> None:
    """``GET /openapi.yaml`` is YAML: read as YAML it must fit the schema it declares."""
    import jsonschema

    resp = client.get("/openapi.yaml")
    served = yaml.safe_load(resp.data)
    answer = served["paths"]["/openapi.yaml"]["get"]["responses"]["200"]
    ((content_type, media),) = answer["content"].items()
    assert resp.content_type.startswith(content_type)
    jsonschema.validate(served, media["schema"])
