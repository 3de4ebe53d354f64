"""Our OpenAPI 3.1 document of both RDS interfaces, generated from the route table.

The upstream interface files (``interface_port_metadata.yml``, ``interface_port_file_storage.yml``)
describe what RDS meant to speak; this document describes what real RDS Layer 2 speaks and
what this connector answers. Every difference from the upstream files is marked on the
operation or schema with ``x-rds-deviation`` (a short note saying what upstream says and why
we differ). The paths, methods and summaries come from ``common/routes.py``; this module adds
only what the table cannot know: the body each function reads and the answers it gives.
A route without an entry in ``_BODIES``/``_ANSWERS`` is a ``KeyError`` here, so the document
cannot silently fall behind the table (``tests/test_openapi.py`` also checks the router).

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

Json = dict[str, Any]
VERSION = "0.1.0"
JSON = "application/json"
MULTIPART = "multipart/form-data"
FORM = "application/x-www-form-urlencoded"

#: operations the router serves besides the route table (probes and this document)
ROUTER_PATHS: tuple[tuple[str, str, str], ...] = (
    ("GET", "/metrics", "Request counts and latencies (Prometheus text format)"),
    ("GET", "/healthz", "Liveness: the service name and the interfaces served"),
    ("GET", "/openapi.yaml", "This document (the deployment's interfaces only)"),
)


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS: dict[str, Json] = {
    "UserId": {
        "type": "string",
        "minLength": 1,
        "description": (
            "Who calls. Session form `port-<name>://<user>:<secret>` (the secret is split off "
            "at the LAST ':'; `<name>` must be this connector's service name) or bare form "
            "`<user>`, for which the connector asks the Port service for the token. "
            '"None" and "" mean absent (401).'
        ),
        "x-rds-deviation": (
            "upstream says never to put a token in the secret part; real RDS puts the user's "
            "OAuth access token there, and so do we"
        ),
        "examples": ["port-local://alice@cloud.example.org:token", "alice@cloud.example.org"],
    },
    "ApiKey": {
        "type": "string",
        "description": "The secret, when a caller sends it apart from userId (port-reva does).",
        "x-rds-deviation": "not in upstream; sent by some RDS callers",
    },
    "Metadata": {
        "type": "object",
        "description": (
            "The project's metadata: the whole RO-Crate 1.1 JSON-LD document. Checked for "
            "its shape only (@context, @graph of entities with @id); the archive backend "
            "reads the root dataset."
        ),
        "properties": {
            "@context": {},
            "@graph": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"@id": {"type": "string"}},
                    "required": ["@id"],
                },
            },
        },
        "required": ["@context", "@graph"],
    },
    "NoMetadata": {
        "description": "No metadata: null, or an empty object as upstream's example sends.",
        "anyOf": [{"type": "null"}, {"type": "object", "maxProperties": 0}],
    },
    "Project": {
        "type": "object",
        "properties": {"projectId": {"type": "string"}, "metadata": _ref("Metadata")},
        "required": ["projectId", "metadata"],
    },
    "File": {
        "type": "object",
        "description": "A file of a project; `id` is its path in the project (may hold '/').",
        "properties": {
            "id": {"type": "string"},
            "filename": {"type": "string"},
            "size": {"type": "integer", "minimum": 0},
            "checksum": {"type": "string", "pattern": "^[a-z0-9]+:"},
        },
        "required": ["id", "filename"],
        "x-rds-deviation": "upstream's `content` is never sent; `size` and `checksum` added",
    },
    "PulledFile": {
        "type": "object",
        "description": "One file of a passive-mode pull and what became of it.",
        "properties": {
            "filename": {"type": "string"},
            "source": {"type": "string"},
            "size": {"type": ["integer", "null"]},
            "md5": {"type": "string"},
            "status": {"enum": ["stored", "skipped", "failed"]},
        },
        "required": ["filename", "status"],
    },
    "StoredFile": {
        "type": "object",
        "properties": {
            "filepath": {"type": "string", "pattern": "^/"},
            "size": {"type": "integer", "minimum": 0},
            "checksum": {"type": "string"},
        },
        "required": ["filepath"],
    },
    "Success": {
        "type": "object",
        "properties": {"success": {"const": True}},
        "required": ["success"],
    },
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details; `field` names the request field at fault.",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "field": {"type": "string"},
            "instance": {"type": "string"},
            "requestId": {"type": "string"},
            "success": {
                "const": False,
                "description": "Deployed RDS callers read `success` from error answers too.",
            },
            "message": {"type": "string", "description": "The detail again, for RDS callers."},
            "files": {
                "type": "array",
                "description": "Per-file report of an upload or pull: what was stored, what not.",
            },
            "notStored": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Files of an upload that did not make it (nothing of them kept).",
            },
            "notDeleted": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Files a failed delete of all files left in place.",
            },
        },
        "required": ["type", "title", "status", "detail", "success", "message"],
        "x-rds-deviation": (
            "upstream documents no error bodies; the Exporter reads `success` (and then "
            "`message`) from every answer of the upload route, error answers included, and "
            "crashes on a body without it"
        ),
    },
}

_USER = {"userId": _ref("UserId"), "apiKey": _ref("ApiKey")}
_PATH_FIELD = {
    "type": "string",
    "description": "An absolute path in the user's storage (`/a/b.csv`); `/` is the root.",
}


def _json_body(props: Json | None = None, required: tuple[str, ...] = ()) -> Json:
    schema: Json = {
        "type": "object",
        "properties": {**_USER, **(props or {})},
        "required": ["userId", *required],
    }
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _upload_body(name_field: str, extra: Json, deviation: str) -> Json:
    schema: Json = {
        "type": "object",
        "properties": {
            **_USER,
            name_field: {"type": "string", "description": "Where the file goes (may hold '/')."},
            **extra,
            "file": {"type": "string", "format": "binary", "description": "The file's bytes."},
        },
        "required": ["userId", name_field, "file"],
    }
    return {
        "required": True,
        "content": {
            MULTIPART: {
                "schema": schema,
                "encoding": {"file": {"contentType": "application/octet-stream"}},
            }
        },
        "x-rds-deviation": deviation,
    }


_FILES_UPLOAD = _upload_body(
    "filename",
    {"username": {"type": "string", "description": "The bare RDS user (ignored)."}},
    "upstream names the file part `files` (we accept both) and has no `username`; the "
    "Exporter sends userId, filename, username, then ONE part `file`, fields first",
)
_FILES_UPLOAD["content"][FORM] = {
    "schema": {
        "type": "object",
        "properties": {
            **_USER,
            "folder": {"type": "string"},
            "service": {"type": "string"},
            "username": {"type": "string"},
        },
        "required": ["userId", "folder", "service"],
    },
    "x-rds-deviation": (
        "passive mode: upstream puts `folder` in the multipart form; real RDS POSTs a plain "
        "form with folder, service, username, userId, and the connector pulls the folder "
        "from `service` itself"
    ),
}

_BODIES: dict[str, Json | None] = {
    "projects_list": _json_body(),
    "project_create": _json_body({"metadata": {"anyOf": [_ref("Metadata"), _ref("NoMetadata")]}}),
    "project_get": _json_body(),
    "project_update": _json_body(
        {"metadata": {"anyOf": [_ref("Metadata"), _ref("NoMetadata")]}}, ("metadata",)
    ),
    "project_publish": _json_body(),
    "project_delete": _json_body(),
    "files_list": _json_body(),
    "files_upload": _FILES_UPLOAD,
    "files_delete": _json_body(),
    "file_get": _json_body(),
    "file_update": _json_body(
        {"filename": {"type": "string", "description": "The new path in the project."}}
    ),
    "file_delete": _json_body(),
    "storage_folder_get": _json_body(
        {
            "filepath": _PATH_FIELD,
            "recursive": {
                "type": "boolean",
                "default": True,
                "description": "false: the interface document's form (children, absolute)",
                "x-rds-deviation": "not in upstream; upstream's form only on request",
            },
        }
    ),
    "storage_file_get": _json_body({"filepath": _PATH_FIELD}, ("filepath",)),
    "storage_file_post": _upload_body(
        "filepath", {}, "upstream names the file part `files`; we expect `file` (and accept both)"
    ),
    "storage_file_patch": _json_body(
        {"filepath": _PATH_FIELD, "newfilepath": _PATH_FIELD}, ("filepath", "newfilepath")
    ),
    "storage_file_delete": _json_body({"filepath": _PATH_FIELD}, ("filepath",)),
    "init": None,
}


def _ok(schema: Json | None, description: str = "OK", content_type: str = JSON) -> Json:
    answer: Json = {"description": description}
    if schema is not None:
        answer["content"] = {content_type: {"schema": schema}}
    return answer


def _files_answer(item: str) -> Json:
    return {
        "type": "object",
        "properties": {"success": {"const": True}, "files": {"type": "array", "items": _ref(item)}},
        "required": ["success", "files"],
    }


_ANSWERS: dict[str, Json] = {
    "projects_list": {"200": _ok({"type": "array", "items": _ref("Project")})},
    "project_create": {"200": _ok(_ref("Project"))},
    "project_get": {"200": _ok(_ref("Metadata"))},
    "project_update": {"200": _ok(_ref("Metadata"))},
    "project_publish": {
        "200": {
            **_ok(
                {
                    "type": "object",
                    "properties": {"DOI": {"type": "string", "minLength": 1}},
                    "required": ["DOI"],
                },
                "Published; the identifier it got",
            ),
            "x-rds-deviation": "upstream says 204; the Exporter reads the key `DOI` of a 200",
        }
    },
    "project_delete": {"204": {"description": "Deleted"}},
    "files_list": {"200": _ok({"type": "array", "items": _ref("File")})},
    "files_upload": {
        "200": _ok(
            {
                "type": "object",
                "properties": {
                    "success": {"const": True},
                    "files": {
                        "type": "array",
                        "items": {"anyOf": [_ref("File"), _ref("PulledFile")]},
                    },
                },
                "required": ["success", "files"],
            },
            "Every file part stored (active), or every file of the folder pulled (passive)",
        )
    },
    "files_delete": {"200": _ok(_ref("Success"))},
    "file_get": {"200": _ok(_ref("File"))},
    "file_update": {"200": _ok(_ref("File"))},
    "file_delete": {"200": _ok(_ref("Success"))},
    "storage_folder_get": {
        "200": {
            **_ok(
                {
                    "type": "object",
                    "properties": {"files": {"type": "array", "items": {"type": "string"}}},
                    "required": ["files"],
                },
                "Every file below the folder, named relative to it, no folder entries "
                "(`recursive: false`: the children as absolute paths, folders ending in '/')",
            ),
            "x-rds-deviation": (
                "upstream says absolute, one level, folders ending in '/'; the deployed "
                "port_owncloud answers recursive, relative, files only, and the Exporter uses "
                "each entry unchanged as the archive's filename and never recurses"
            ),
        }
    },
    "storage_file_get": {
        "200": _ok({"type": "string", "format": "binary"}, "The bytes", "application/octet-stream"),
        "206": _ok(
            {"type": "string", "format": "binary"},
            "The requested range (a `Range` header was sent)",
            "application/octet-stream",
        ),
    },
    "storage_file_post": {"200": _ok(_files_answer("StoredFile"), "Stored")},
    "storage_file_patch": {
        "200": _ok(
            {
                "type": "object",
                "properties": {"success": {"const": True}, "filepath": {"type": "string"}},
                "required": ["success", "filepath"],
            }
        )
    },
    "storage_file_delete": {"200": _ok(_ref("Success"))},
    "init": {
        "200": _ok(
            {
                "type": "object",
                "properties": {
                    "login": {"type": "string"},
                    "registration": {"type": "string"},
                    "servicename": {"type": "string"},
                },
                "required": ["login", "registration", "servicename"],
            },
            "Logged in and registered (idempotent)",
        )
    },
}

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
    if r.name in ("files_upload", "storage_file_post"):
        codes.append(507)
    if r.name == "files_upload":
        codes.append(403)
    return sorted(codes)


def _problem(code: int) -> Json:
    """The shared answer of status ``code`` (in ``components/responses``)."""
    return {
        "description": _ERRORS[code],
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        "content": {PROBLEM_CONTENT_TYPE: {"schema": _ref("Problem")}},
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
    body = _BODIES[r.name]
    if body is not None:
        op["requestBody"] = body
    answers: Json = {}
    for code, answer in _ANSWERS[r.name].items():
        answers[code] = {
            **answer,
            "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        }
    for code in _error_codes(r):
        answers[str(code)] = {"$ref": f"#/components/responses/Problem{code}"}
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
        "/openapi.yaml": ("application/yaml", {"type": "string"}),
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
