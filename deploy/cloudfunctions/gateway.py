"""The Google API Gateway document (OpenAPI 2.0), generated from the route table.

Each RDS path and method is routed to its own function's URL with
``path_translation: APPEND_PATH_TO_ADDRESS`` (the function sees the original path and
extracts its parameters itself, see ``Route.match``), and the gateway calls it with an ID
token for ``jwt_audience`` = the function's URL, which is what a function deployed with
``--no-allow-unauthenticated`` requires. A ``{file_id:path}`` parameter (file ids of
nested files contain ``/``) becomes Google's double-wildcard template ``{file_id=**}``.

The committed ``gateway.yaml`` is this document for placeholder project and region
(``PROJECT_ID``, ``REGION``); the deploy script writes one with real values.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from common.routes import INIT, Route
from deploy.cloudfunctions.table import cloud_name, deployed_routes, function_url

PLACEHOLDER_PROJECT = "PROJECT_ID"
PLACEHOLDER_REGION = "REGION"
GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_JWKS = "https://www.googleapis.com/oauth2/v3/certs"
_PARAM = re.compile(r"\{(?P<name>[a-z_]+)(?::path)?\}")


def gateway_path(route: Route) -> str:
    """The route's path in API Gateway's template syntax (``{x:path}`` -> ``{x=**}``)."""
    return re.sub(r"\{([a-z_]+):path\}", r"{\1=**}", route.path)


def _operation(route: Route, address: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.interface],
        "x-google-backend": {
            "address": address,
            "path_translation": "APPEND_PATH_TO_ADDRESS",
            "jwt_audience": address,
            "deadline": float(route.sizing.timeout),
        },
        "responses": {
            "200": {"description": "Success (see the RDS interface)"},
            "204": {"description": "Success without a body"},
            "default": {"description": "An application/problem+json error naming the field"},
        },
    }
    params = [
        {"name": m["name"], "in": "path", "required": True, "type": "string"}
        for m in _PARAM.finditer(route.path)
    ]
    if params:
        op["parameters"] = params
    return op


def build_document(
    project: str = PLACEHOLDER_PROJECT,
    region: str = PLACEHOLDER_REGION,
    service: str = "",
    *,
    interfaces: set[str] | None = None,
    caller_audiences: list[str] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 2.0 document for the routes of ``interfaces`` (all when ``None``),
    optionally requiring callers to present Google ID tokens at the gateway."""
    paths: dict[str, dict[str, Any]] = {}
    for route in deployed_routes(interfaces):
        if route.interface == INIT:
            continue  # called once by the deploy, directly: not a route for callers
        address = function_url(project, region, cloud_name(route.name, service))
        paths.setdefault(gateway_path(route), {})[route.method.lower()] = _operation(route, address)
    title = f"rds-connector {service}".strip()
    doc: dict[str, Any] = {
        "swagger": "2.0",
        "info": {
            "title": title,
            "version": "0.1.0",
            "description": "RDS connector (metadata and fileStorage interfaces); "
            "generated from common/routes.py by python -m deploy.cloudfunctions gateway",
        },
        "schemes": ["https"],
        "consumes": ["application/json", "multipart/form-data"],
        "produces": ["application/json"],
        "paths": paths,
    }
    if caller_audiences:
        # Caller authentication at the gateway: callers present a Google ID token.
        doc["securityDefinitions"] = {
            "google_id_token": {
                "type": "oauth2",
                "flow": "implicit",
                "authorizationUrl": "",
                "x-google-issuer": GOOGLE_ISSUER,
                "x-google-jwks_uri": GOOGLE_JWKS,
                "x-google-audiences": ",".join(caller_audiences),
            }
        }
        doc["security"] = [{"google_id_token": []}]
    return doc


def render(doc: dict[str, Any]) -> str:
    """The document as YAML, with a header saying it is generated."""
    header = (
        "# Generated from common/routes.py by `python -m deploy.cloudfunctions gateway`;\n"
        "# do not edit. PROJECT_ID and REGION are placeholders: the deploy script writes\n"
        "# this document with real values next to the bundles.\n"
    )
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def standard_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with Google's ``{x=**}`` template turned into plain ``{x}``, for
    validators that know only standard OpenAPI 2.0 path templates."""
    plain = dict(doc)
    plain["paths"] = {re.sub(r"=\*\*\}", "}", p): v for p, v in doc["paths"].items()}
    return plain
