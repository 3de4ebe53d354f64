"""THE route table: every RDS endpoint, declared once with all its facts.

One ``Route`` per endpoint says which function answers which method and path for which
interface, what request body it reads and what answers it gives (the OpenAPI document,
``common/openapi.py``), and how much memory and time it gets as a Cloud Function
(``deploy/cloudfunctions``). The router, the per-function deploy, the gateway document,
the OpenAPI document and the tests all read this one table.

Paths are the ones real RDS callers use (``/metadata/...`` and ``/storage/...``);
``{name}`` marks a path parameter, ``{name:path}`` one that may contain ``/`` (file ids of
nested files).

A function can be served alone (functions-framework, or behind a gateway that appends the
original path), so it must not rely on the router's URL map: ``Route.match`` extracts the
parameters from the request path itself, tolerating any prefix before the RDS path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from common.schemas import (
    FORM,
    PATH_FIELD,
    USER_FIELDS,
    Json,
    files_answer,
    json_body,
    ok,
    ref,
    upload_body,
)

METADATA = "metadata"
FILE_STORAGE = "fileStorage"
INIT = "init"

_PARAM = re.compile(r"\{(?P<name>[a-z_]+)(?::(?P<kind>path))?\}")


@dataclass(frozen=True)
class Sizing:
    """What the function gets when deployed alone: memory (gcloud's units), timeout in s."""

    memory: str
    timeout: int


SMALL = Sizing("256Mi", 60)
# Gen2 HTTP functions run at most 60 minutes: transfers (passive pulls, downloads,
# uploads up to the 32 MB body limit) get all of it.
TRANSFER = Sizing("1Gi", 3600)


@dataclass(frozen=True)
class Route:
    """One endpoint: function ``name`` answers ``method`` on ``path`` for ``interface``.

    ``body`` is the OpenAPI request body (``None``: none is read), ``answers`` the success
    answers by status; ``problems`` are error statuses beyond the ones every route of its
    interface and method can answer (``common/openapi.py`` adds those).
    """

    name: str
    method: str
    path: str
    interface: str
    summary: str
    answers: Json = field(compare=False, repr=False)
    body: Json | None = field(default=None, compare=False, repr=False)
    sizing: Sizing = SMALL
    problems: tuple[int, ...] = ()
    params: tuple[str, ...] = field(init=False)
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: list[str] = []
        pattern = ""
        pos = 0
        for m in _PARAM.finditer(self.path):
            pattern += re.escape(self.path[pos : m.start()])
            names.append(m["name"])
            body = ".+" if m["kind"] == "path" else "[^/]+"
            pattern += f"(?P<{m['name']}>{body})"
            pos = m.end()
        pattern += re.escape(self.path[pos:])
        object.__setattr__(self, "params", tuple(names))
        object.__setattr__(self, "_regex", re.compile(f"^.*?{pattern}/?$"))

    @property
    def flask_path(self) -> str:
        """The path in Flask's rule syntax (``<name>``, ``<path:name>``)."""
        return _PARAM.sub(
            lambda m: f"<path:{m['name']}>" if m["kind"] else f"<{m['name']}>", self.path
        )

    def match(self, path: str) -> dict[str, str] | None:
        """Path parameters when ``path`` ends with this route's path, else ``None``.

        ``path`` is the decoded path (WSGI's PATH_INFO), so nothing is unquoted again.
        """
        m = self._regex.match(path)
        if m is None:
            return None
        return dict(m.groupdict())


P = "/metadata/project"
S = "/storage"
_METADATA_FIELD = {"metadata": {"anyOf": [ref("Metadata"), ref("NoMetadata")]}}
_PASSIVE_FORM: Json = {
    "schema": {
        "type": "object",
        "properties": {
            **USER_FIELDS,
            "folder": {"type": "string"},
            "service": {"type": "string"},
            "username": {"type": "string"},
        },
        "required": ["userId", "folder", "service"],
    },
    "x-rds-deviation": (
        "passive mode: upstream puts `folder` in the multipart form; real RDS POSTs a plain "
        "form with folder, service, username, userId, and the connector pulls the folder "
        "from `service` itself: like the Exporter it asks that storage with the bare user "
        "first and, on ANY answer >= 300 (the deployed port_owncloud answers a bare-form "
        "listing with 500), once more with the session form; it reads any listing form "
        "(recursive relative, one-level absolute with folder entries, or mixed)"
    ),
}
_FILES_UPLOAD = upload_body(
    "filename",
    {"username": {"type": "string", "description": "The bare RDS user (ignored)."}},
    "upstream names the file part `files` (we accept both) and has no `username`; the "
    "Exporter sends userId, filename, username, then ONE part `file`, fields first",
)
_FILES_UPLOAD["content"][FORM] = _PASSIVE_FORM
_BYTES = {"type": "string", "format": "binary"}

# A table: each route's name, method, path, interface and summary on its first line.
# fmt: off
ROUTES: tuple[Route, ...] = (
    Route("projects_list", "GET", P, METADATA, "List the user's projects",
        body=json_body(),
        answers={"200": ok({"type": "array", "items": ref("Project")})},
    ),
    Route("project_create", "POST", P, METADATA, "Create a project",
        body=json_body(_METADATA_FIELD),
        answers={"200": ok(ref("Project"))},
    ),
    Route("project_get", "GET", P + "/{project_id}", METADATA, "Read a project's metadata",
        body=json_body(),
        answers={"200": ok(ref("Metadata"))},
    ),
    Route("project_update", "PATCH", P + "/{project_id}", METADATA, "Replace metadata",
        body=json_body(_METADATA_FIELD, ("metadata",)),
        answers={"200": ok(ref("Metadata"))},
        sizing=Sizing("512Mi", 120),  # a whole RO-Crate arrives in the body
    ),
    Route("project_publish", "PUT", P + "/{project_id}", METADATA, "Publish; answers the DOI",
        body=json_body(),
        answers={
            "200": {
                **ok(
                    {
                        "type": "object",
                        "properties": {
                            "DOI": {"type": "string", "minLength": 1, "nullable": True},
                            "submitted": {"type": "boolean"},
                        },
                        "required": ["DOI"],
                    },
                    "Published; the identifier it got",
                ),
                "x-rds-deviation": "upstream says 204; the Exporter reads the key `DOI` of a 200",
            }
        },
        sizing=Sizing("256Mi", 300),  # the archive may take minutes to mint a DOI
    ),
    Route("project_delete", "DELETE", P + "/{project_id}", METADATA, "Delete a draft",
        body=json_body(),
        answers={"204": {"description": "Deleted"}},
    ),
    Route("files_list", "GET", P + "/{project_id}/files", METADATA, "List a project's files",
        body=json_body(),
        answers={"200": ok({"type": "array", "items": ref("File")})},
    ),
    Route("files_upload", "POST", P + "/{project_id}/files", METADATA, "Add a file",
        body=_FILES_UPLOAD,
        answers={
            "200": ok(
                {
                    "type": "object",
                    "properties": {
                        "success": {"const": True},
                        "files": {
                            "type": "array",
                            "items": {"anyOf": [ref("File"), ref("PulledFile")]},
                        },
                        "bundles": {
                            "type": "array",
                            "description": "Passive mode: the zips made to fit the archive's "
                            "file cap (filename, folder, size, md5, status).",
                        },
                    },
                    "required": ["success", "files"],
                },
                "Every file part stored (active), or every file of the folder pulled (passive)",
            )
        },
        sizing=TRANSFER,  # passive mode pulls whole folders server-side
        problems=(403, 507),  # 403: username names another user (passive mode)
    ),
    Route("files_delete", "DELETE", P + "/{project_id}/files", METADATA, "Remove all files",
        body=json_body(),
        answers={"200": ok(ref("Success"))},
        sizing=Sizing("256Mi", 300),
    ),
    Route("file_get", "GET", P + "/{project_id}/files/{file_id:path}", METADATA, "Read a file",
        body=json_body(),
        answers={"200": ok(ref("File"))},
    ),
    Route("file_update", "PATCH", P + "/{project_id}/files/{file_id:path}", METADATA, "Rename",
        body=json_body(
            {"filename": {"type": "string", "description": "The new path in the project."}}
        ),
        answers={"200": ok(ref("File"))},
    ),
    Route("file_delete", "DELETE", P + "/{project_id}/files/{file_id:path}", METADATA, "Delete",
        body=json_body(),
        answers={"200": ok(ref("Success"))},
    ),
    Route("storage_folder_get", "GET", S + "/folder", FILE_STORAGE, "List a folder",
        body=json_body(
            {
                "filepath": PATH_FIELD,
                "recursive": {
                    "type": "boolean",
                    "default": True,
                    "description": "false: the interface document's form (children, absolute)",
                    "x-rds-deviation": "not in upstream; upstream's form only on request",
                },
            }
        ),
        answers={
            "200": {
                **ok(
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
                    "port_owncloud answers recursive, relative, files only, and the Exporter "
                    "uses each entry unchanged as the archive's filename and never recurses"
                ),
            }
        },
    ),
    Route("storage_file_get", "GET", S + "/file", FILE_STORAGE, "Download a file",
        body=json_body({"filepath": PATH_FIELD}, ("filepath",)),
        answers={
            "200": ok(_BYTES, "The bytes", "application/octet-stream"),
            "206": ok(
                _BYTES,
                "The requested range (a `Range` header was sent)",
                "application/octet-stream",
            ),
        },
        sizing=TRANSFER,
    ),
    Route("storage_file_post", "POST", S + "/file", FILE_STORAGE, "Upload a file",
        body=upload_body(
            "filepath",
            {},
            "upstream names the file part `files`; we expect `file` (and accept both)",
        ),
        answers={"200": ok(files_answer("StoredFile"), "Stored")},
        sizing=TRANSFER,
        problems=(507,),
    ),
    Route("storage_file_patch", "PATCH", S + "/file", FILE_STORAGE, "Rename or move a file",
        body=json_body(
            {"filepath": PATH_FIELD, "newfilepath": PATH_FIELD}, ("filepath", "newfilepath")
        ),
        answers={
            "200": ok(
                {
                    "type": "object",
                    "properties": {"success": {"const": True}, "filepath": {"type": "string"}},
                    "required": ["success", "filepath"],
                }
            )
        },
    ),
    Route("storage_file_delete", "DELETE", S + "/file", FILE_STORAGE, "Delete a file",
        body=json_body({"filepath": PATH_FIELD}, ("filepath",)),
        answers={"200": ok(ref("Success"))},
    ),
    Route("init", "POST", "/init", INIT, "Log in and register with the Token Storage",
        answers={
            "200": ok(
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
        sizing=Sizing("256Mi", 300),  # registration retries up to REGISTRATION_DEADLINE
    ),
)
# fmt: on

BY_NAME: dict[str, Route] = {r.name: r for r in ROUTES}


def route(name: str) -> Route:
    """The route of function ``name`` (a ``KeyError`` names a function with no route)."""
    return BY_NAME[name]


def routes_for(interfaces: set[str]) -> list[Route]:
    """The routes served when ``interfaces`` are configured (init is always served)."""
    return [r for r in ROUTES if r.interface in interfaces or r.interface == INIT]
