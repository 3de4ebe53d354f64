"""The inveniordm backend's settings and its registration: OAuth2 from the address, else a
login service whose users enter a personal access token -- both accepted by RDS's parser."""

from __future__ import annotations

import pytest
from RDS import Util

from common.config import load_settings
from common.errors import ConfigError
from common.registry import build_payload
from common.runtime import Runtime

BASE = {
    "CONNECTOR_CONFIG": "",
    "CONNECTOR_METADATA": "inveniordm",
    "CONNECTOR_STORAGE": "none",
    "INVENIORDM_ADDRESS": "http://127.0.0.1:5000",
}


def payload(**env: str) -> dict:
    settings = load_settings({**BASE, **env})
    runtime = Runtime.build(settings)
    assert runtime.archive is not None
    return build_payload(settings, [runtime.archive])


def test_without_oauth_users_enter_a_personal_access_token() -> None:
    sent = payload()
    assert sent["servicename"] == "port-inveniordm"
    assert sent["credentials"] == {"userId": False, "password": True}
    service = Util.getServiceObject(sent)
    assert type(service).__name__ == "LoginService"
    assert (service.userId, service.password) == (False, True)
    assert service.to_dict() == sent
    assert sent["projectLinkTemplate"] == "http://127.0.0.1:5000/uploads/${projectId}"


def test_with_oauth_the_urls_come_from_the_address() -> None:
    sent = payload(
        INVENIORDM_OAUTH_CLIENT_ID="cid",
        INVENIORDM_OAUTH_CLIENT_SECRET="csecret",
        RDS_OAUTH_REDIRECT_URI="https://rds.example/redirect",
        INVENIORDM_DISPLAYNAME="TU Data",
    )
    assert sent["authorize_url"].startswith("http://127.0.0.1:5000/oauth/authorize?")
    assert "client_id=cid" in sent["authorize_url"]
    assert sent["refresh_url"] == "http://127.0.0.1:5000/oauth/token"
    assert sent["displayName"] == "TU Data"
    service = Util.getServiceObject(sent)
    assert type(service).__name__ == "OAuth2Service"
    assert service.to_dict() == sent


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"INVENIORDM_ADDRESS": ""}, "INVENIORDM_ADDRESS"),
        ({"INVENIORDM_ADDRESS": "ftp://x"}, "INVENIORDM_ADDRESS"),
        ({"INVENIORDM_OAUTH_CLIENT_ID": "cid"}, "INVENIORDM_OAUTH_CLIENT_SECRET"),
        ({"INVENIORDM_OAUTH_CLIENT_SECRET": "s3cret-value"}, "INVENIORDM_OAUTH_CLIENT_ID"),
        (
            {"INVENIORDM_OAUTH_CLIENT_ID": "c", "INVENIORDM_OAUTH_CLIENT_SECRET": "s3cret-value"},
            "RDS_OAUTH_REDIRECT_URI",
        ),
    ],
)
def test_a_bad_setting_stops_the_start_named(env: dict, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        Runtime.build(load_settings({**BASE, **env}))
    assert named in str(err.value)
    assert "s3cret-value" not in str(err.value)
    assert "s3cret" not in repr(err.value)
