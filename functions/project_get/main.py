"""GET /metadata/project/{id}: the project's metadata as an RO-Crate."""

import functions_framework

from common.http import Answer, Call, endpoint


@functions_framework.http
@endpoint("project_get")
def project_get(call: Call) -> Answer:
    """Read one project's metadata."""
    return call.archive.get_project(call.identity, call.params["project_id"])
