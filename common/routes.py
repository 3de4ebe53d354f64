"""THE route table: every RDS endpoint, the function that serves it, and how to match it.

The router, the per-function deploy, the gateway document and the tests all read this one
table. Paths are the ones real RDS callers use (``/metadata/...`` and ``/storage/...``);
``{name}`` marks a path parameter, ``{name:path}`` one that may contain ``/`` (file ids of
nested files).

A function can be served alone (functions-framework, or behind a gateway that appends the
original path), so it must not rely on the router's URL map: ``Route.match`` extracts the
parameters from the request path itself, tolerating any prefix before the RDS path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

METADATA = "metadata"
FILE_STORAGE = "fileStorage"
INIT = "init"

_PARAM = re.compile(r"\{(?P<name>[a-z_]+)(?::(?P<kind>path))?\}")


@dataclass(frozen=True)
class Route:
    """One endpoint: function ``name`` answers ``method`` on ``path`` for ``interface``."""

    name: str
    method: str
    path: str
    interface: str
    summary: str
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

ROUTES: tuple[Route, ...] = (
    Route("projects_list", "GET", P, METADATA, "List the user's projects"),
    Route("project_create", "POST", P, METADATA, "Create a project"),
    Route("project_get", "GET", P + "/{project_id}", METADATA, "Read a project's metadata"),
    Route("project_update", "PATCH", P + "/{project_id}", METADATA, "Replace metadata"),
    Route("project_publish", "PUT", P + "/{project_id}", METADATA, "Publish; answers the DOI"),
    Route("project_delete", "DELETE", P + "/{project_id}", METADATA, "Delete a draft"),
    Route("files_list", "GET", P + "/{project_id}/files", METADATA, "List a project's files"),
    Route("files_upload", "POST", P + "/{project_id}/files", METADATA, "Add a file"),
    Route("files_delete", "DELETE", P + "/{project_id}/files", METADATA, "Remove all files"),
    Route("file_get", "GET", P + "/{project_id}/files/{file_id:path}", METADATA, "Read a file"),
    Route("file_update", "PATCH", P + "/{project_id}/files/{file_id:path}", METADATA, "Rename"),
    Route("file_delete", "DELETE", P + "/{project_id}/files/{file_id:path}", METADATA, "Delete"),
    Route("storage_folder_get", "GET", S + "/folder", FILE_STORAGE, "List a folder"),
    Route("storage_file_get", "GET", S + "/file", FILE_STORAGE, "Download a file"),
    Route("storage_file_post", "POST", S + "/file", FILE_STORAGE, "Upload a file"),
    Route("storage_file_patch", "PATCH", S + "/file", FILE_STORAGE, "Rename or move a file"),
    Route("storage_file_delete", "DELETE", S + "/file", FILE_STORAGE, "Delete a file"),
    Route("init", "POST", "/init", INIT, "Log in and register with the Token Storage"),
)

BY_NAME: dict[str, Route] = {r.name: r for r in ROUTES}


def route(name: str) -> Route:
    """The route of function ``name`` (a ``KeyError`` names a function with no route)."""
    return BY_NAME[name]


def routes_for(interfaces: set[str]) -> list[Route]:
    """The routes served when ``interfaces`` are configured (init is always served)."""
    return [r for r in ROUTES if r.interface in interfaces or r.interface == INIT]
