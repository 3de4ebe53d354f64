"""Backends by name, imported only when configured (boto3 must not slow other cold starts)."""

from __future__ import annotations

import importlib
from typing import Any

from common.backends.base import Archive, Storage
from common.config import Settings

ARCHIVES = {
    "local": "common.backends.local:LocalArchive",
    "zenodo": "common.backends.zenodo:ZenodoArchive",
    "inveniordm": "common.backends.inveniordm:InvenioRDMArchive",
}
STORAGES = {
    "local": "common.backends.local:LocalStorage",
    "webdav": "common.backends.webdav:WebDAVStorage",
    "s3": "common.backends.s3:S3Storage",
}


def _load(table: dict[str, str], name: str) -> Any:
    module, _, cls = table[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_archive(settings: Settings) -> Archive | None:
    """The configured metadata backend, or ``None`` when the interface is left out."""
    if settings.metadata_backend == "none":
        return None
    archive: Archive = _load(ARCHIVES, settings.metadata_backend).from_settings(settings)
    return archive


def build_storage(settings: Settings) -> Storage | None:
    """The configured fileStorage backend, or ``None`` when the interface is left out."""
    if settings.storage_backend == "none":
        return None
    storage: Storage = _load(STORAGES, settings.storage_backend).from_settings(settings)
    return storage
