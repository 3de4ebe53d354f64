"""A real WebDAV server (wsgidav over a temp folder) dressed as ownCloud and Nextcloud.

wsgidav serves the folder of each user at both ``/remote.php/webdav`` (ownCloud style,
for the user the credentials name) and ``/remote.php/dav/files/<user>`` (Nextcloud style).
In front of it a small WSGI middleware plays the EFSS's login: it accepts a user's OAuth
token as ``Bearer`` and their app password as ``Basic <user>:<password>``, answers 401
otherwise, and bounds ``wsgi.input`` by ``Content-Length`` the way production servers do
(werkzeug's dev server hands wsgidav the raw socket).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.wsgi import LimitedStream
from wsgidav.wsgidav_app import WsgiDAVApp

from tests.support.servers import ServerThread

OWNCLOUD_ROOT = "/remote.php/webdav"
NEXTCLOUD_ROOT = "/remote.php/dav/files/"


class EFSSAuth:
    """Authorization in front of wsgidav: Bearer tokens and Basic app passwords per user."""

    def __init__(
        self, app: Any, per_user: dict[str, Any], tokens: dict[str, str], passwords: dict[str, str]
    ) -> None:
        self.app = app  # serves /remote.php/dav/files/<user> for every user
        self.per_user = per_user  # user -> app serving /remote.php/webdav on their folder
        self.tokens = tokens  # token -> user
        self.passwords = passwords  # user -> app password
        self.bearer_enabled = True  # False plays an ownCloud that rejects Bearer on WebDAV
        self.seen: list[tuple[str, str, str]] = []  # (method, path, scheme)

    def _user(self, header: str) -> tuple[str | None, str]:
        scheme, _, value = header.partition(" ")
        if scheme == "Bearer" and self.bearer_enabled:
            return self.tokens.get(value), "bearer"
        if scheme == "Basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None, "basic"
            ok = password and self.passwords.get(user) == password
            return (user if ok else None), "basic"
        return None, scheme.lower()

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        user, scheme = self._user(environ.pop("HTTP_AUTHORIZATION", ""))
        path = environ.get("PATH_INFO", "")
        self.seen.append((environ["REQUEST_METHOD"], path, scheme))
        if user is None:
            return _answer(start, "401 Unauthorized", {"WWW-Authenticate": 'Bearer realm="t"'})
        if path.startswith(NEXTCLOUD_ROOT):
            owner = path[len(NEXTCLOUD_ROOT) :].split("/", 1)[0]
            if owner != user:
                return _answer(start, "403 Forbidden")
        length = environ.get("CONTENT_LENGTH")
        if length and length.isdigit():
            environ["wsgi.input"] = LimitedStream(environ["wsgi.input"], int(length))
        app = self.per_user[user] if path.startswith(OWNCLOUD_ROOT) else self.app
        return app(environ, start)


def _answer(start: Callable[..., Any], status: str, headers: dict[str, str] | None = None) -> list:
    start(status, [("Content-Type", "text/plain"), *(headers or {}).items()])
    return [status.encode()]


class WebDAVServer:
    """wsgidav on loopback over ``root``: one folder per user, both EFSS path styles."""

    def __init__(self, root: Path, users: dict[str, tuple[str, str]]) -> None:
        """``users`` maps an EFSS user id to ``(oauth token, app password)``."""
        self.root = root
        mapping = {}
        for user in users:
            (root / user).mkdir(parents=True, exist_ok=True)
            mapping[NEXTCLOUD_ROOT + user] = str(root / user)
        logging.getLogger("wsgidav").setLevel(logging.ERROR)
        self.auth = EFSSAuth(
            _dav(mapping),
            {user: _dav({OWNCLOUD_ROOT: str(root / user)}) for user in users},
            tokens={tok: user for user, (tok, _) in users.items()},
            passwords={user: pw for user, (_, pw) in users.items()},
        )
        self.server = ServerThread(self.auth)
        self.url = self.server.url

    def start(self) -> WebDAVServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()


def _dav(mapping: dict[str, str]) -> WsgiDAVApp:
    """wsgidav with anonymous access: ``EFSSAuth`` in front has checked the caller."""
    return WsgiDAVApp(
        {
            "provider_mapping": mapping,
            "simple_dc": {"user_mapping": {"*": True}},
            "http_authenticator": {"accept_basic": False, "accept_digest": False},
            "verbose": 0,
            "logging": {"enable": False},
            "dir_browser": {"enable": True},
        }
    )
