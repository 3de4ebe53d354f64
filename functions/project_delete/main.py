"""DELETE /metadata/project/{id}: remove a draft project."""

import functions_framework

from common.http import Answer, Call, endpoint


@functions_framework.http
@endpoint("project_delete")
def project_delete(call: Call) -> Answer:
    """Delete the project; 204, or 409 once it is published."""
    call.archive.delete_project(call.identity, call.params["project_id"])
    return None
