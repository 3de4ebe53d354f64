"""The deploy table: per function memory and timeout, and the one place names are derived.

Every route of ``common/routes.py`` gets one Cloud Function, sized as the route declares
(``Route.sizing``). Function names in the repo are Python identifiers (``files_upload``);
Cloud Functions names must be lower-case letters, digits and hyphens, start with a letter
and stay within 63 characters, so the deployed name is ``rds-[<service>-]<name-with-hyphens>`` (``rds-zenodo-files-upload``).
"""

from __future__ import annotations

import re

from common.routes import ROUTES, Route, Sizing, routes_for

NAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
RUNTIME = "python311"  # the Python CI tests on
#: each function's memory and timeout, as its route declares them (a derived view)
SIZING: dict[str, Sizing] = {r.name: r.sizing for r in ROUTES}


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
    """The routes a deployment serving ``interfaces`` needs (all when ``None``)."""
    return list(ROUTES) if interfaces is None else routes_for(interfaces)
