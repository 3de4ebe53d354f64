"""PUT /metadata/project/{id}: publish. Real RDS expects 200 with the DOI (the yml says 204)."""

import functions_framework

from common.http import Answer, Call, endpoint


@functions_framework.http
@endpoint("project_publish")
def project_publish(call: Call) -> Answer:
    """Publish the project; answers ``{"DOI": ...}`` (or the archive's answer holding it)."""
    answer = call.archive.publish_project(call.identity, call.params["project_id"])
    return answer if isinstance(answer, dict) else {"DOI": answer}
