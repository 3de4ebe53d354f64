"""The pieces request and answer schemas are built from, and the shared component schemas.

Each route declares its own body and answers in ``common/routes.py`` with these helpers;
``common/openapi.py`` puts the declarations and ``SCHEMAS`` together into the document.
Plain data only: nothing here imports a web framework or YAML, so the router and every
function can import the route table cheaply.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]
JSON = "application/json"
MULTIPART = "multipart/form-data"
FORM = "application/x-www-form-urlencoded"


def ref(name: str) -> Json:
    """A reference to the shared schema ``name`` (in ``SCHEMAS``)."""
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
        "properties": {"projectId": {"type": "string"}, "metadata": ref("Metadata")},
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
            "bundle": {
                "type": "string",
                "description": "The zip in the project that holds this file (folders over the "
                "archive's file cap are zipped); absent when the file is stored as itself.",
            },
            "entry": {"type": "string", "description": "The file's name inside `bundle`."},
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

USER_FIELDS = {"userId": ref("UserId"), "apiKey": ref("ApiKey")}
PATH_FIELD = {
    "type": "string",
    "description": "An absolute path in the user's storage (`/a/b.csv`); `/` is the root.",
}


def json_body(props: Json | None = None, required: tuple[str, ...] = ()) -> Json:
    """A JSON request body: ``userId`` (and ``apiKey``) plus ``props``."""
    schema: Json = {
        "type": "object",
        "properties": {**USER_FIELDS, **(props or {})},
        "required": ["userId", *required],
    }
    return {"required": True, "content": {JSON: {"schema": schema}}}


def upload_body(name_field: str, extra: Json, deviation: str) -> Json:
    """A multipart request body: the fields, then ONE part ``file``, named by ``name_field``."""
    schema: Json = {
        "type": "object",
        "properties": {
            **USER_FIELDS,
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


def ok(schema: Json | None, description: str = "OK", content_type: str = JSON) -> Json:
    """A success answer whose body follows ``schema`` (none when ``None``)."""
    answer: Json = {"description": description}
    if schema is not None:
        answer["content"] = {content_type: {"schema": schema}}
    return answer


def files_answer(item: str) -> Json:
    """``{success: true, files: [<item>...]}``."""
    return {
        "type": "object",
        "properties": {"success": {"const": True}, "files": {"type": "array", "items": ref(item)}},
        "required": ["success", "files"],
    }
