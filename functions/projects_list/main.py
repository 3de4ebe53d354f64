"""GET /metadata/project: the caller's projects."""

import functions_framework

from common.http import Answer, Call, endpoint


@functions_framework.http
@endpoint("projects_list")
def projects_list(call: Call) -> Answer:
    """List every project of the caller as ``[{projectId, metadata}]``."""
    return call.archive.list_projects(call.identity)
