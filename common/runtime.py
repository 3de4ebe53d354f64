"""The per-process runtime: settings, the configured backends and one HTTP session.

Built once, on the first request of a function (or by the router at start) and kept for
the life of the process; it holds no request state, so dropping it (``reset``) is always
safe -- tests do that between configurations. The session is made on first use: a
function whose backend never calls out (``local``) then never imports ``requests``, ~30 ms
of its cold start (docs/benchmarks.md, "Cold start").
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from common.backends import build_archive, build_storage
from common.backends.base import Archive, Storage
from common.config import Problems, Settings, load_declared, read_settings
from common.logs import configure
from common.passive_settings import PassiveSettings
from common.useragent import USER_AGENT

if TYPE_CHECKING:
    import requests


def new_session(settings: Settings) -> requests.Session:
    """A session with our User-Agent and TLS verification as configured; its calls are
    observed as the Token Storage's, the Port service's, or else passive pulls'."""
    from common import outside  # with requests: only once something calls out

    named = {settings.token_storage_url: "token-storage", settings.port_service_url: "port-service"}
    session = outside.session(
        "passive", verify=settings.verify_ssl, services={k: v for k, v in named.items() if k}
    )
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclass
class Runtime:
    settings: Settings
    archive: Archive | None
    storage: Storage | None
    #: given by tests; else ``session`` makes one on first use
    given_session: requests.Session | None = field(default=None, repr=False)
    #: passive transfer's own settings, read and checked with the rest at start
    passive: PassiveSettings = field(init=False)

    def __post_init__(self) -> None:
        self.passive = load_declared(PassiveSettings, self.settings)

    @functools.cached_property
    def session(self) -> requests.Session:
        """The process's session to the Token Storage, the Port service and passive pulls."""
        return self.given_session or new_session(self.settings)

    @classmethod
    def build(cls, settings: Settings | None = None) -> Runtime:
        """Load settings (unless given), configure logging, build the backends and read
        every module's declared settings: one ``ConfigError`` names every bad value."""
        built, problems = assemble(settings)
        problems.raise_any()
        assert built is not None
        return built


def assemble(settings: Settings | None = None) -> tuple[Runtime | None, Problems]:
    """Build every component that can be built and gather the problems of all of them:
    the settings, each configured backend, passive transfer. The runtime is ``None``
    when any part failed (``rds-connector check`` reports the problems; a start stops)."""
    problems = Problems()
    if settings is None:
        settings, found = read_settings()
        problems.items.extend(found)
    configure(settings.loglevel, settings.log_format)
    archive = problems.take(lambda: build_archive(settings), None)
    storage = problems.take(lambda: build_storage(settings), None)
    problems.take(lambda: load_declared(PassiveSettings, settings), None)
    if problems.items:
        return None, problems
    return Runtime(settings, archive, storage), problems


_lock = threading.Lock()
_current: Runtime | None = None


def get_runtime() -> Runtime:
    """The process's runtime, built on first use."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = Runtime.build()
    return _current


def set_runtime(runtime: Runtime | None) -> None:
    """Install ``runtime`` (the router at start; tests), or drop it with ``None``."""
    global _current
    with _lock:
        _current = runtime
