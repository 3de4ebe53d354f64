"""POST /init: log in and register with the Token Storage (cloud deploys call it once)."""

import functions_framework

from common.http import Answer, Call, endpoint
from common.init import init_answer


@functions_framework.http
@endpoint("init")
def init(call: Call) -> Answer:
    """Run init (idempotent); answers what happened."""
    return init_answer(call.runtime)
