"""THE deploy table: per function memory and timeout, and the one place names are derived.

Every route of ``common/routes.py`` gets one Cloud Function. Function names in the repo
are Python identifiers (``files_upload``); Cloud Functions names must be lower-case
letters, digits and hyphens, start with a letter and stay within 63 characters, so the
deployed name is ``rds-[<service>-]<name-with-hyphens>`` (``rds-zenodo-files-upload``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.routes import ROUTES, Route, routes_for

NAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
RUNTIME = "python311"  # the Python CI tests on


@dataclass(frozen=True)
class Sizing:
    """What one function gets: memory (gcloud's units) and timeout in seconds."""

    memory: str
    timeout: int


SMALL = Sizing("256Mi", 60)
# Gen2 HTTP functions run at most 60 minutes: transfers (passive pulls, downloads,
# uploads up to the 32 MB body limit) get all of it.
TRANSFER = Sizing("1Gi", 3600)

SIZING: dict[str, Sizing] = {
    "projects_list": SMALL,
    "project_create": SMALL,
    "project_get": SMALL,
    "project_update": Sizing("512Mi", 120),  # a whole RO-Crate arrives in the body
    "project_publish": Sizing("256Mi", 300),  # the archive may take minutes to mint a DOI
    "project_delete": SMALL,
    "files_list": SMALL,
    "files_upload": TRANSFER,  # passive mode pulls whole folders server-side
    "files_delete": Sizing("256Mi", 300),
    "file_get": SMALL,
    "file_update": SMALL,
    "file_delete": SMALL,
    "storage_folder_get": SMALL,
    "storage_file_get": TRANSFER,
    "storage_file_post": TRANSFER,
    "storage_file_patch": SMALL,
    "storage_file_delete": SMALL,
    "init": Sizing("256Mi", 300),  # registration retries up to REGISTRATION_DEADLINE
}


def service_slug(servicename: str) -> str:
    """``port-zenodo`` -> ``zenodo`` (lower case, hyphens only) for use in names."""
    slug = servicename.removeprefix("port-")
    return re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-")


def cloud_name(function: str, service: str = "") -> str:
    """The deployed name of ``function`` (``service`` is a slug such as ``zenodo``, or '')."""
    parts = ["rds", service, function.replace("_", "-")]
    name = "-".join(p for p in parts if p)
    if not NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a valid Cloud Functions name (service {service!r})")
    return name


def function_url(project: str, region: str, name: str) -> str:
    """The function's HTTPS address (also the ID-token audience for calls to it)."""
    return f"https://{region}-{project}.cloudfunctions.net/{name}"


def deployed_routes(interfaces: set[str] | None = None) -> list[Route]:
    """The routes a deployment serving ``interfaces`` needs (all when ``None``), each with
    its sizing (a route missing from ``SIZING`` is an error, caught by a test)."""
    missing = [r.name for r in ROUTES if r.name not in SIZING]
    if missing:
        raise KeyError(f"no memory/timeout in deploy/cloudfunctions/table.py for {missing}")
    return list(ROUTES) if interfaces is None else routes_for(interfaces)
