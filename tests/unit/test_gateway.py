"""The API Gateway document: generated from the route table, committed, valid OpenAPI 2.0."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from common.routes import INIT, ROUTES
from deploy.cloudfunctions import build, gateway
from deploy.cloudfunctions.table import SIZING

COMMITTED = build.COMMITTED_GATEWAY


def committed() -> dict:
    return yaml.safe_load(COMMITTED.read_text())


def test_committed_document_is_the_generated_one() -> None:
    """Fails when a route changed and `python -m deploy.cloudfunctions gateway` was not run."""
    doc = gateway.build_document(service="local")
    assert COMMITTED.read_text() == gateway.render(doc)


def test_committed_document_is_valid_openapi_2() -> None:
    doc = committed()
    assert doc["swagger"] == "2.0"
    validate(gateway.standard_view(doc))


def test_the_validator_really_rejects_a_broken_document() -> None:
    doc = gateway.standard_view(committed())
    broken = copy.deepcopy(doc)
    del broken["paths"]["/metadata/project/{project_id}"]["get"]["parameters"]
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_every_rds_route_maps_to_its_own_function_with_its_path_appended() -> None:
    doc = committed()
    seen = set()
    for route in ROUTES:
        if route.interface == INIT:
            continue
        op = doc["paths"][gateway.gateway_path(route)][route.method.lower()]
        backend = op["x-google-backend"]
        fn = "rds-local-" + route.name.replace("_", "-")
        assert backend["address"] == f"https://REGION-PROJECT_ID.cloudfunctions.net/{fn}"
        assert backend["path_translation"] == "APPEND_PATH_TO_ADDRESS"
        assert backend["jwt_audience"] == backend["address"]
        assert backend["deadline"] == SIZING[route.name].timeout
        declared = [p["name"] for p in op.get("parameters", [])]
        assert declared == list(route.params)
        seen.add(route.name)
    ops = [op["operationId"] for methods in doc["paths"].values() for op in methods.values()]
    assert sorted(ops) == sorted(seen)
    assert "/init" not in doc["paths"]  # init is called by the deploy, not routed


def test_nested_file_ids_use_the_double_wildcard() -> None:
    paths = committed()["paths"]
    assert "/metadata/project/{project_id}/files/{file_id=**}" in paths
    assert all(re.fullmatch(r"[a-z/_{}=*]+", p) for p in paths)


def test_real_values_and_caller_tokens_at_the_gateway() -> None:
    doc = gateway.build_document(
        "proj-1",
        "europe-west3",
        "zenodo",
        interfaces={"metadata"},
        caller_audiences=["rds-gateway"],
    )
    validate(gateway.standard_view(doc))
    addresses = {
        op["x-google-backend"]["address"] for m in doc["paths"].values() for op in m.values()
    }
    assert "https://europe-west3-proj-1.cloudfunctions.net/rds-zenodo-files-upload" in addresses
    assert not any(p.startswith("/storage") for p in doc["paths"])
    sec = doc["securityDefinitions"]["google_id_token"]
    assert sec["x-google-issuer"] == "https://accounts.google.com"
    assert sec["x-google-audiences"] == "rds-gateway"
    assert doc["security"] == [{"google_id_token": []}]
