"""Our OpenAPI 3.1 document of both RDS interfaces, generated from the route table.

The upstream interface files (``interface_port_metadata.yml``, ``interface_port_file_storage.yml``)
describe what RDS meant to speak; this document describes what real RDS Layer 2 speaks and
what this connector answers. Every difference from the upstream files is marked on the
operation or schema with ``x-rds-deviation`` (a short note saying what upstream says and why
we differ). Every operation comes from its one declaration in ``common/routes.py`` (path,
method, summary, request body, answers, extra error statuses); the shared schemas live in
``common/schemas.py``. This module adds only what holds for all routes: the error answers
each interface and method can give, and the router's own probes, so the document cannot
fall behind the table (``tests/unit/test_openapi.py`` also checks the router).

OpenAPI 3.1 (not 3.0 like upstream) because RDS sends JSON bodies on GET and DELETE, which
3.0 leaves undefined and 3.1 allows. ``python -m common.openapi`` prints the document; the
committed copy is ``docs/openapi.yaml`` and the router serves it at ``GET /openapi.yaml``
(only the operations of the interfaces the deployment implements).
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from common.errors import PROBLEM_CONTENT_TYPE
from common.routes import FILE_STORAGE, INIT, METADATA, ROUTES, Route
from common.schemas import JSON, SCHEMAS, Json, ref

VERSION = "0.1.0"

#: operations the router serves besides the route table (probes and this document)
ROUTER_PATHS: tuple[tuple[str, str, str], ...] = (
    ("GET", "/metrics", "Request counts and latencies (Prometheus text format)"),
    ("GET", "/healthz", "Liveness: the service name and the interfaces served"),
    ("GET", "/openapi.yaml", "This document (the deployment's interfaces only)"),
)


_ERRORS = {
    400: "A field is missing or malformed (the problem's `field` names it)",
    401: "userId is missing, malformed, for another service, or has no usable token",
    403: "username names another user than userId (passive mode)",
    404: "No such project, file or path (or this deployment does not serve the interface)",
    409: "The resource's state forbids it (published project, existing target)",
    413: "A body, form field or part is over its limit",
    415: "The body's content type is not one this operation reads",
    431: "The request's headers are over CONNECTOR_MAX_HEADER_BYTES",
    500: "A bug; the body carries only a request id to find the log line",
    502: "The outside service answered in a way we cannot use",
    503: "The outside service (or the Token Storage/Port service) cannot be reached",
    504: "The outside service timed out",
    507: "The outside service has no room for the file",
}


def _error_codes(r: Route) -> list[int]:
    if r.interface == INIT:
        return [401, 431, 500, 503]  # 401: caller authentication, where it is turned on
    codes = [400, 401, 404, 413, 415, 431, 500, 502, 503, 504]
    if r.method != "GET":
        codes.append(409)
    codes.extend(r.problems)
    return sorted(codes)


def _problem(code: int) -> Json:
    """The shared answer of status ``code`` (in ``components/responses``)."""
    return {
        "description": _ERRORS[code],
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        "content": {PROBLEM_CONTENT_TYPE: {"schema": ref("Problem")}},
    }


def _oa_path(path: str) -> str:
    return path.replace(":path}", "}")


def _operation(r: Route) -> Json:
    op: Json = {
        "operationId": r.name,
        "summary": r.summary,
        "tags": [r.interface],
    }
    params = []
    for name in r.params:
        param: Json = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        if f"{{{name}:path}}" in r.path:
            param["description"] = "May contain '/' (files in folders)."
        params.append(param)
    if params:
        op["parameters"] = params
    if r.body is not None:
        op["requestBody"] = r.body
    answers: Json = {}
    for code, answer in r.answers.items():
        answers[code] = {
            **answer,
            "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        }
    for status in _error_codes(r):
        answers[str(status)] = {"$ref": f"#/components/responses/Problem{status}"}
    op["responses"] = answers
    return op


def _router_operation(path: str, summary: str) -> Json:
    content = {
        "/metrics": ("text/plain", {"type": "string"}),
        "/healthz": (
            JSON,
            {
                "type": "object",
                "properties": {
                    "status": {"const": "ok"},
                    "servicename": {"type": "string"},
                    "implements": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["status", "servicename", "implements"],
            },
        ),
        # what a client reading YAML gets: the document as a mapping, not a string
        "/openapi.yaml": (
            "application/yaml",
            {
                "type": "object",
                "properties": {"openapi": {"const": "3.1.0"}, "paths": {"type": "object"}},
                "required": ["openapi", "info", "paths"],
            },
        ),
    }[path]
    name = path.strip("/").replace(".", "_")
    return {
        "operationId": f"router_{name}",
        "summary": summary,
        "tags": ["router"],
        "responses": {
            "200": {"description": "OK", "content": {content[0]: {"schema": content[1]}}}
        },
    }


def build_document(interfaces: set[str] | None = None) -> Json:
    """The OpenAPI document for ``interfaces`` (default: both), as a plain dict."""
    wanted = {METADATA, FILE_STORAGE} if interfaces is None else set(interfaces)
    paths: Json = {}
    for r in ROUTES:
        if r.interface in wanted or r.interface == INIT:
            paths.setdefault(_oa_path(r.path), {})[r.method.lower()] = _operation(r)
    for method, path, summary in ROUTER_PATHS:
        paths.setdefault(path, {})[method.lower()] = _router_operation(path, summary)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "RDS connector (metadata and fileStorage interfaces)",
            "version": VERSION,
            "description": (
                "The two RDS connector interfaces as real RDS Layer 2 speaks them: identity in "
                "the body field `userId` (JSON even on GET and DELETE; a form field on uploads), "
                "no auth header. Every difference from RDS's upstream interface files is marked "
                "`x-rds-deviation`. Errors are RFC 9457 `application/problem+json`."
            ),
        },
        "tags": [
            {"name": METADATA, "description": "Projects (depositions) with RO-Crate metadata"},
            {"name": FILE_STORAGE, "description": "A user's folder tree"},
            {"name": INIT, "description": "Login and Token Storage registration"},
            {"name": "router", "description": "Served by the router only (probes, this file)"},
        ],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {f"Problem{code}": _problem(code) for code in sorted(_ERRORS)},
            "headers": {
                "RequestId": {
                    "description": "The request's id (the caller's X-Request-ID, or a new one)",
                    "schema": {"type": "string"},
                }
            },
        },
    }


class _Dumper(yaml.SafeDumper):
    """Writes shared sub-schemas out in full: anchors and aliases would puzzle readers."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(interfaces: set[str] | None = None) -> str:
    """The document as YAML text (stable: same table, same bytes)."""
    return yaml.dump(
        build_document(interfaces), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )


if __name__ == "__main__":
    sys.stdout.write(render())
