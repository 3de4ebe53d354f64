"""The ``webdav`` backend's edges with ``responses``: status mapping, XML, auth, settings."""

from __future__ import annotations

import base64
import io

import pytest
import requests
import responses
import urllib3
from RDS import Util

from common.backends.base import LoginFailed
from common.backends.webdav import WebDAVStorage, efss_user
from common.config import load_settings
from common.errors import (
    ConfigError,
    Forbidden,
    InsufficientStorage,
    NotFound,
    TooManyRequests,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from common.identity import Identity
from common.registry import build_payload
from common.streams import Upload

DAV = "https://dav.example/remote.php/webdav"
NC = "https://dav.example/remote.php/dav/files/alice"
WHO = Identity("alice@dav.example", "secret-token-123")


def storage(system: str = "owncloud", **kw) -> WebDAVStorage:
    return WebDAVStorage("https://dav.example", system=system, sleep=lambda s: None, **kw)


def multistatus(*entries: tuple[str, bool]) -> str:
    parts = []
    for href, folder in entries:
        kind = "<d:collection/>" if folder else ""
        parts.append(
            f"<d:response><d:href>{href}</d:href><d:propstat><d:prop>"
            f"<d:resourcetype>{kind}</d:resourcetype></d:prop>"
            "<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>"
        )
    return f'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">{"".join(parts)}</d:multistatus>'


@responses.activate
def test_listing_decodes_hrefs_in_both_forms() -> None:
    body = multistatus(
        ("/remote.php/dav/files/alice/a%20b/", True),
        ("https://dav.example/remote.php/dav/files/alice/a%20b/na%C3%AFve%20%E6%96%87.txt", False),
        ("/remote.php/dav/files/alice/a%20b/sub/", True),
    )
    call = responses.add("PROPFIND", f"{NC}/a%20b", body=body, status=207)
    assert storage("nextcloud").list_folder(WHO, "a b") == ["/a b/naïve 文.txt", "/a b/sub/"]
    sent = call.calls[0].request
    assert sent.headers["Depth"] == "1"
    assert sent.headers["Authorization"] == "Bearer secret-token-123"


@responses.activate
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (507, InsufficientStorage),
        (503, UpstreamUnavailable),
        (500, UpstreamError),
    ],
)
def test_upstream_statuses_become_problems(status: int, error: type) -> None:
    responses.add("PROPFIND", f"{DAV}/x", status=status, body="")
    with pytest.raises(error) as err:
        storage().list_folder(WHO, "x")
    assert "secret-token-123" not in str(err.value.detail)


@responses.activate
def test_a_full_quota_on_put_is_507_and_the_temp_file_is_dropped() -> None:
    responses.add("PROPFIND", f"{DAV}/new.bin", status=404)
    responses.add(
        responses.PUT, responses.matchers.re.compile(rf"{DAV}/\.rds-upload-.*"), status=507
    )
    delete = responses.add(
        responses.DELETE, responses.matchers.re.compile(rf"{DAV}/\.rds-upload-.*"), status=204
    )
    with pytest.raises(InsufficientStorage):
        storage().store_file(WHO, "new.bin", Upload("new.bin", iter([b"data"]), size=4))
    assert delete.call_count == 1


@responses.activate
def test_rate_limit_keeps_retry_after() -> None:
    responses.add("PROPFIND", f"{DAV}/", status=429, headers={"Retry-After": "30"})
    with pytest.raises(TooManyRequests) as err:
        storage().list_folder(WHO, "")
    assert err.value.headers == {"Retry-After": "30"}


@responses.activate
@pytest.mark.parametrize(
    "body",
    [
        "<d:multistatus xmlns:d='DAV:'><d:response>",  # cut off
        "this is not xml",
        # entity expansion ("billion laughs"): refused by defusedxml, never expanded
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<d:multistatus xmlns:d="DAV:"><d:response><d:href>&b;</d:href></d:response>'
        "</d:multistatus>",
    ],
)
def test_bad_xml_is_502(body: str) -> None:
    responses.add("PROPFIND", f"{DAV}/", status=207, body=body)
    with pytest.raises(UpstreamError, match="malformed XML"):
        storage().list_folder(WHO, "")


@responses.activate
def test_transport_failures() -> None:
    responses.add("PROPFIND", f"{DAV}/slow", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(UpstreamTimeout):
        storage().list_folder(WHO, "slow")
    responses.add("PROPFIND", f"{DAV}/down", body=requests.ConnectionError("refused"))
    with pytest.raises(UpstreamUnavailable):
        storage().list_folder(WHO, "down")


@responses.activate
def test_basic_auth_sends_the_efss_user_and_app_password() -> None:
    call = responses.add("DELETE", f"{NC}/f.txt", status=204)
    storage("nextcloud", auth="basic").delete_file(WHO, "f.txt")
    header = call.calls[0].request.headers["Authorization"]
    assert base64.b64decode(header.removeprefix("Basic ")) == b"alice:secret-token-123"


@responses.activate
def test_login_needs_only_an_answer() -> None:
    responses.add("OPTIONS", "https://dav.example/remote.php/webdav/", status=401)
    storage().login()
    responses.add("OPTIONS", "https://dav.example/remote.php/dav/files/", status=503)
    with pytest.raises(LoginFailed, match="503"):
        storage("nextcloud").login()


def test_efss_user_from_cloud_ids() -> None:
    hosts = {"cloud.example.org", "cloud.example.org:8443"}
    assert efss_user("alice@cloud.example.org", "auto", hosts) == "alice"
    assert efss_user("a@uni.de@cloud.example.org:8443", "auto", hosts) == "a@uni.de"
    assert efss_user("alice@elsewhere.org", "auto", hosts) == "alice@elsewhere.org"
    assert efss_user("alice@elsewhere.org", "strip", hosts) == "alice"
    assert efss_user("alice@cloud.example.org", "keep", hosts) == "alice@cloud.example.org"
    assert efss_user("alice", "strip", hosts) == "alice"


def webdav_env(**extra: str) -> dict[str, str]:
    return {
        "CONNECTOR_CONFIG": "",
        "CONNECTOR_METADATA": "none",
        "CONNECTOR_STORAGE": "webdav",
        "CONNECTOR_SERVICENAME": "port-owncloud",
        "OWNCLOUD_INSTALLATION_URL": "https://cloud.example.org",
        "OWNCLOUD_INTERNAL_INSTALLATION_URL": "http://owncloud.internal:8080",
        "OWNCLOUD_OAUTH_CLIENT_ID": "cid",
        "OWNCLOUD_OAUTH_CLIENT_SECRET": "csecret",
        "RDS_OAUTH_REDIRECT_URI": "https://rds.example.org/redirect",
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"OWNCLOUD_OAUTH_CLIENT_ID": ""}, "OWNCLOUD_OAUTH_CLIENT_ID"),
        ({"OWNCLOUD_OAUTH_CLIENT_SECRET": ""}, "OWNCLOUD_OAUTH_CLIENT_SECRET"),
        ({"OWNCLOUD_INSTALLATION_URL": ""}, "OWNCLOUD_INSTALLATION_URL"),
        ({"OWNCLOUD_INSTALLATION_URL": "cloud.example.org"}, "OWNCLOUD_INSTALLATION_URL"),
        ({"EFSS_SYSTEM": "seafile"}, "EFSS_SYSTEM"),
        ({"WEBDAV_AUTH": "digest"}, "WEBDAV_AUTH"),
        ({"WEBDAV_USER_ID": "lower"}, "WEBDAV_USER_ID"),
    ],
)
def test_bad_settings_name_the_variable(extra: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        WebDAVStorage.from_settings(load_settings(webdav_env(**extra)))


@pytest.mark.parametrize(
    ("system", "authorize", "token"),
    [
        (
            "owncloud",
            "https://cloud.example.org/index.php/apps/oauth2/authorize",
            "http://owncloud.internal:8080/index.php/apps/oauth2/api/v1/token",
        ),
        (
            "nextcloud",
            "https://cloud.example.org/apps/oauth2/authorize",
            "http://owncloud.internal:8080/apps/oauth2/api/v1/token",
        ),
    ],
)
def test_oauth_registration_survives_the_rds_parser(system, authorize, token) -> None:
    settings = load_settings(webdav_env(EFSS_SYSTEM=system))
    backend = WebDAVStorage.from_settings(settings)
    assert backend.server_url == "http://owncloud.internal:8080"  # server to server
    payload = build_payload(settings, [backend])
    assert payload["authorize_url"].startswith(authorize + "?response_type=code&client_id=cid")
    assert "redirect_uri=https%3A%2F%2Frds.example.org%2Fredirect" in payload["authorize_url"]
    assert payload["refresh_url"] == token
    service = Util.getServiceObject(payload)
    assert type(service).__name__ == "OAuth2Service"
    assert service.to_dict() == payload


def test_app_password_mode_registers_a_login_form() -> None:
    env = webdav_env(WEBDAV_AUTH="basic", OWNCLOUD_OAUTH_CLIENT_ID="")
    settings = load_settings(env)
    payload = build_payload(settings, [WebDAVStorage.from_settings(settings)])
    assert payload["credentials"] == {"userId": True, "password": True}
    assert "client_id" not in payload
    assert type(Util.getServiceObject(payload)).__name__ == "LoginService"


class BrokenBody(io.RawIOBase):
    """A server answer that starts, then loses its connection."""

    def __init__(self, start: bytes) -> None:
        self.start = start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.start:
            n = min(len(buffer), len(self.start))
            buffer[:n], self.start = self.start[:n], self.start[n:]
            return n
        raise urllib3.exceptions.ProtocolError("connection broken")


@responses.activate
def test_answers_broken_off_midway_are_503() -> None:
    start = multistatus(("/remote.php/webdav/", True))[:-40].encode()
    responses.add("PROPFIND", f"{DAV}/", status=207, body=io.BufferedReader(BrokenBody(start)))
    with pytest.raises(UpstreamUnavailable, match="broke off"):
        storage().list_folder(WHO, "")
    responses.add("GET", f"{DAV}/f.bin", body=io.BufferedReader(BrokenBody(b"x" * 1000)))
    download = storage().open_file(WHO, "f.bin")
    with pytest.raises(UpstreamUnavailable, match="broke off"):
        b"".join(download.chunks)
