"""Init: log in to the outside service(s), then register with the Token Storage.

Run by the router before it binds its port, and by the ``init`` function after a cloud
deploy. Both steps are idempotent, so running init twice changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from common.backends.base import LoginFailed
from common.errors import UpstreamUnavailable
from common.registry import RegistrationFailed, build_payload, register
from common.runtime import Runtime

log = logging.getLogger("rds.init")


def run_init(runtime: Runtime, **kwargs: Callable[..., Any]) -> dict[str, str]:
    """Login then registration; ``LoginFailed``/``RegistrationFailed`` say what failed."""
    backends = [b for b in (runtime.archive, runtime.storage) if b is not None]
    for backend in backends:
        backend.login()
    log.info("init.login ok backends=%s", ",".join(type(b).__name__ for b in backends))
    payload = build_payload(runtime.settings, backends)
    outcome = register(runtime.settings, payload, session=runtime.session, **kwargs)
    return {"login": "ok", "registration": outcome, "servicename": runtime.settings.servicename}


def init_answer(runtime: Runtime) -> dict[str, str]:
    """Init for the HTTP function: a failure becomes a 503 problem that says which step."""
    try:
        return run_init(runtime)
    except (LoginFailed, RegistrationFailed) as exc:
        raise UpstreamUnavailable(str(exc)) from exc
