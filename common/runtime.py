"""The per-process runtime: settings, the configured backends and one HTTP session.

Built once, on the first request of a function (or by the router at start) and kept for
the life of the process; it holds no request state, so dropping it (``reset``) is always
safe -- tests do that between configurations.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import requests

from common.backends import build_archive, build_storage
from common.backends.base import Archive, Storage
from common.config import Settings, load_declared, load_settings
from common.logs import configure
from common.passive import PassiveSettings
from common.useragent import USER_AGENT


def new_session(settings: Settings) -> requests.Session:
    """A session with our User-Agent and TLS verification as configured."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.verify = settings.verify_ssl
    return session


@dataclass
class Runtime:
    settings: Settings
    archive: Archive | None
    storage: Storage | None
    session: requests.Session
    #: passive transfer's own settings, read and checked with the rest at start
    passive: PassiveSettings = field(init=False)

    def __post_init__(self) -> None:
        self.passive = load_declared(PassiveSettings, self.settings)

    @classmethod
    def build(cls, settings: Settings | None = None) -> Runtime:
        """Load settings (unless given), configure logging, build the backends and read
        every module's declared settings: a bad value stops the start, named."""
        settings = settings or load_settings()
        configure(settings.loglevel)
        return cls(
            settings, build_archive(settings), build_storage(settings), new_session(settings)
        )


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
