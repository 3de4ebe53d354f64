"""PATCH /metadata/project/{id}: replace the metadata with the whole RO-Crate sent."""

import functions_framework

from common.http import Answer, Call, endpoint
from common.metadata import metadata_field


@functions_framework.http
@endpoint("project_update")
def project_update(call: Call) -> Answer:
    """Update the project from ``metadata`` (``null`` leaves it as it is)."""
    return call.archive.update_project(
        call.identity, call.params["project_id"], metadata_field(call.fields)
    )
