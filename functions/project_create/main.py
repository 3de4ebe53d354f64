"""POST /metadata/project: a new project, with the caller's RO-Crate when one is sent."""

import functions_framework

from common.http import Answer, Call, endpoint
from common.metadata import idempotency_key, metadata_field


@functions_framework.http
@endpoint("project_create")
def project_create(call: Call) -> Answer:
    """Create a project (once per ``Idempotency-Key``); answers ``{projectId, metadata}``."""
    key = idempotency_key(call.request.headers)
    return call.archive.create_project(
        call.identity, metadata_field(call.fields), idempotency_key=key
    )
