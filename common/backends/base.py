"""The two small protocols every backend implements, one per RDS interface.

``Archive`` serves the metadata interface (a project is a deposition/record with an
RO-Crate and files), ``Storage`` the fileStorage interface (a user's folder tree). Both
take the caller's ``Identity`` on every call and raise ``common.errors`` exceptions only;
they know nothing of HTTP requests or of Flask, so a backend is tested without a server.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol

from common.config import Settings
from common.errors import BadRequest, UnprocessableContent
from common.identity import Identity
from common.streams import Download, Meter, Upload

Json = dict[str, Any]


class Backend(Protocol):
    """What init needs of any backend: a login check and its registration fields."""

    #: the backend cannot work without the user's token (bare-form userIds need a lookup)
    needs_token: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Backend:
        """Build from the settings; ``ConfigError`` names a missing or bad value."""
        ...

    def login(self) -> None:
        """Check that the outside service can be used; raise ``LoginFailed`` if not."""
        ...

    def registration_fields(self) -> Json:
        """OAuth2 fields (``authorize_url`` ...) or ``{"credentials": {...}}``."""
        ...

    def service_info(self) -> Json:
        """Defaults for ``displayName``, ``description``, ``icon``, ``infoUrl`` ..."""
        ...


class Archive(Backend, Protocol):
    """The metadata interface: projects with RO-Crate metadata and files."""

    #: most files one project holds (``None``: no cap); a passive pull zips folders to fit
    max_files: int | None

    def list_projects(self, who: Identity) -> list[Json]: ...
    def create_project(
        self, who: Identity, metadata: Json | None, *, idempotency_key: str | None = None
    ) -> Json:
        """A new project; a retry with the same ``idempotency_key`` (the caller's
        ``Idempotency-Key`` header) answers the first project instead of a second."""
        ...

    def get_project(self, who: Identity, project_id: str) -> Json: ...
    def update_project(self, who: Identity, project_id: str, metadata: Json | None) -> Json: ...
    def publish_project(self, who: Identity, project_id: str) -> str | Json:
        """The DOI; or the whole answer, which keeps the key ``DOI`` (a community review
        submitted instead of a publish answers ``{"DOI": None, "submitted": True, ...}``)."""
        ...

    def delete_project(self, who: Identity, project_id: str) -> None: ...
    def list_files(self, who: Identity, project_id: str) -> list[Json]: ...
    def store_file(self, who: Identity, project_id: str, upload: Upload) -> Json: ...
    def delete_files(self, who: Identity, project_id: str) -> None: ...
    def get_file(self, who: Identity, project_id: str, file_id: str) -> Json: ...
    def update_file(self, who: Identity, project_id: str, file_id: str, changes: Json) -> Json: ...
    def delete_file(self, who: Identity, project_id: str, file_id: str) -> None: ...

    def check_batch(
        self, who: Identity, project_id: str, entries: list[tuple[str, int | None]]
    ) -> None:
        """Per-record limits checked for a whole batch up front (an archive without such
        limits accepts every batch).

        A passive transfer calls it once after walking the folder and before any byte
        moves, so a run the record cannot hold is refused whole instead of failing at file
        101. ``entries`` are ``(relative path, size)``; a size is ``None`` when not known
        yet (a fileStorage listing carries none), and the archive's ``store_file`` still
        checks each file's size before sending it.
        """
        ...


class Storage(Backend, Protocol):
    """The fileStorage interface: a user's folder tree, paths relative to their root.

    Two listings: ``list_files`` is what every deployed RDS caller reads (every file below
    the folder, named relative to it, no folder entries -- port_owncloud's answer);
    ``list_folder`` is the interface document's form (the folder's children as absolute
    paths, folders ending in ``/``), served only on explicit request.
    """

    def list_folder(self, who: Identity, path: str) -> list[str]: ...
    def list_files(self, who: Identity, path: str, limit: int) -> list[str]: ...
    def open_file(self, who: Identity, path: str, byte_range: str | None = None) -> Download: ...
    def store_file(self, who: Identity, path: str, upload: Upload) -> Json: ...
    def move_file(self, who: Identity, path: str, new_path: str) -> Json: ...
    def delete_file(self, who: Identity, path: str) -> None: ...


class StorageBase(ABC):
    """What every fileStorage backend shares, in the style of powertools' persistence
    layers: the public ``Storage`` methods hold the guards every path gets (the root is no
    file and can be neither moved nor deleted) and build the answers' shapes; an adapter
    implements the five small ``_`` verbs for its store. ``list_files`` walks
    ``list_folder``; a store with a cheaper recursive listing overrides it.
    """

    needs_token = False

    @abstractmethod
    def list_folder(self, who: Identity, path: str) -> list[str]:
        """The folder's children as absolute paths, folders ending in ``/``; a file: []."""

    @abstractmethod
    def _open(self, who: Identity, path: str, byte_range: str | None) -> Download: ...

    @abstractmethod
    def _store(self, who: Identity, path: str, upload: Upload) -> Meter:
        """Store the upload whole or not at all; the ``Meter`` the bytes went through."""

    @abstractmethod
    def _move(self, who: Identity, path: str, new_path: str) -> None: ...

    @abstractmethod
    def _delete(self, who: Identity, path: str) -> None:
        """Delete a file, or a folder with everything in it."""

    def in_flight(self, path: str) -> bool:
        """Whether ``path`` names the store's own uploads in flight (never a user's file)."""
        return False

    def list_files(self, who: Identity, path: str, limit: int) -> list[str]:
        return walk_files(lambda folder: self.list_folder(who, folder), path, limit)

    def open_file(self, who: Identity, path: str, byte_range: str | None = None) -> Download:
        if not path:
            raise BadRequest("/ is a folder", field="filepath")
        return self._open(who, path, byte_range)

    def store_file(self, who: Identity, path: str, upload: Upload) -> Json:
        if not path:
            raise BadRequest("filepath names the root folder, not a file", field="filepath")
        self._visible(path, "filepath")
        meter = self._store(who, path, upload)
        return {"filepath": f"/{path}", "size": meter.size, "checksum": f"md5:{meter.md5}"}

    def move_file(self, who: Identity, path: str, new_path: str) -> Json:
        if not path or not new_path:
            raise BadRequest("the root folder cannot be moved", field="filepath")
        if new_path == path or new_path.startswith(path + "/"):
            raise BadRequest(f"/{path} cannot be moved into itself", field="newfilepath")
        self._visible(new_path, "newfilepath")
        self._move(who, path, new_path)
        return {"filepath": f"/{new_path}"}

    def delete_file(self, who: Identity, path: str) -> None:
        if not path:
            raise BadRequest("the root folder cannot be deleted", field="filepath")
        self._delete(who, path)

    def _visible(self, path: str, field: str) -> None:
        """A file stored or moved under an in-flight name would be hidden for ever."""
        if self.in_flight(path):
            raise BadRequest(f"/{path} is reserved for uploads in flight", field=field)


def svg_icon(svg: bytes) -> str:
    """A backend's icon as the ``data:`` URI RDS registers."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def service_info(display: str, en: str, de: str, icon: str, **links: str) -> Json:
    """What RDS shows about a service; ``links``: infoUrl, helpUrl, projectLinkTemplate."""
    return {
        "displayName": display,
        "description": {"en": en, "de": de},
        "icon": icon,
        "infoUrl": links.get("infoUrl", ""),
        "helpUrl": links.get("helpUrl", ""),
        "projectLinkTemplate": links.get("projectLinkTemplate", ""),
    }


def display_info(own: Any) -> Json:
    """An archive's display overrides from its declared settings (``display_name``,
    ``info_url``, ``help_url``, ``icon``, ``project_link_template``; unset ones ``None``)."""
    return {
        "displayName": own.display_name,
        "infoUrl": own.info_url,
        "helpUrl": own.help_url,
        "icon": own.icon,
        "projectLinkTemplate": own.project_link_template,
    }


def walk_files(list_children: Callable[[str], list[str]], path: str, limit: int) -> list[str]:
    """Every file below ``path`` by listing folder after folder, relative, sorted.

    ``list_children(folder)`` is a backend's ``list_folder`` (absolute children, folders
    ending in ``/``); backends whose store has no cheaper recursive listing use this. More
    than ``limit`` files is a 422 naming ``filepath``, before the answer grows without bound.
    """
    root = f"/{path}/" if path else "/"
    files: list[str] = []
    pending = [path]
    while pending:
        for child in list_children(pending.pop()):
            if child.endswith("/"):
                pending.append(child[1:-1])
                continue
            files.append(child[len(root) :])
            check_listing_size(len(files), limit)
    return sorted(files)


def check_listing_size(count: int, limit: int) -> None:
    """A listing over ``limit`` files is refused (``CONNECTOR_MAX_LISTING``)."""
    if count > limit:
        raise UnprocessableContent(
            f"the folder holds more than {limit} files; list a subfolder "
            "(CONNECTOR_MAX_LISTING sets the limit)",
            field="filepath",
        )


class LoginFailed(Exception):
    """Init could not log in to the outside service (message says what failed)."""
