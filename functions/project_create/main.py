"""POST /metadata/project: a new project, with the caller's RO-Crate when one is sent."""

import functions_framework

from common.http import Answer, Call, endpoint
from common.metadata import metadata_field


@functions_framework.http
@endpoint("project_create")
def project_create(call: Call) -> Answer:
    """Create a project; answers ``{projectId, metadata}``."""
    return call.archive.create_project(call.identity, metadata_field(call.fields))
