"""Passive transfer's settings, apart from the transfer itself.

The runtime reads and checks them at start in every deployment; keeping them here means a
function that never pulls a folder does not import the pull (requests, zipstream) to do so.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config import setting

DEFAULT_TEMPLATE = "http://layer1-{service}"


@dataclass(frozen=True)
class PassiveSettings:
    """What passive transfer reads from the configuration, checked at start."""

    #: where another service's fileStorage interface answers (``{service}`` is replaced)
    storage_url_template: str = setting("PASSIVE_STORAGE_URL_TEMPLATE", "url", DEFAULT_TEMPLATE)
    #: a folder with more files is refused before any byte moves
    max_files: int = setting("PASSIVE_MAX_FILES", "int", 10_000, lo=1, hi=10**8)
    #: files moved at the same time
    concurrency: int = setting("PASSIVE_CONCURRENCY", "int", 4, lo=1, hi=256)
    #: when set, the only storage services a pull may ask (comma- or space-separated)
    allowed_services: tuple[str, ...] = setting("PASSIVE_ALLOWED_SERVICES", "list", ())
