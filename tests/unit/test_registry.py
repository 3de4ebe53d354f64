"""Registration with the Token Storage: payload contract, retries, replace-on-change."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from RDS import Util

from common.config import load_settings
from common.registry import RegistrationFailed, build_payload, register
from common.runtime import Runtime
from tests.support.clock import Clock

TS = "http://ts.test"


def local_payload(tmp_path, **env):
    settings = load_settings(
        {
            "CONNECTOR_CONFIG": "",
            "CONNECTOR_DATA_DIR": str(tmp_path),
            "CENTRAL_SERVICE_TOKEN_STORAGE": TS,
            **env,
        }
    )
    rt = Runtime.build(settings)
    return settings, build_payload(settings, [b for b in (rt.archive, rt.storage) if b])


def test_rds_parser_accepts_our_payload_and_keeps_every_field(tmp_path) -> None:
    _, payload = local_payload(
        tmp_path,
        CONNECTOR_INFO_URL="https://rds.example.org/info page",
        CONNECTOR_DESCRIPTION_DE="Lokal",
    )
    service = Util.getServiceObject(payload)
    assert type(service).__name__ == "LoginService"
    assert service.to_dict() == payload
    assert payload["implements"] == ["fileStorage", "metadata"]
    assert payload["credentials"] == {"userId": True, "password": False}
    assert "client_secret" not in payload
    assert (
        Util.getServiceObject(json.dumps({"type": "LoginService", "data": payload})).to_dict()
        == payload
    )


def test_oauth_fields_survive_the_rds_parser() -> None:
    class OAuthBackend:
        def registration_fields(self):
            return {
                "authorize_url": "https://z.example/oauth/authorize?scope=deposit%3Awrite",
                "refresh_url": "https://z.example/oauth/token",
                "client_id": "cid",
                "client_secret": "csecret",
            }

        def service_info(self):
            return {
                "displayName": "Z",
                "infoUrl": "https://z.example",
                "icon": "data:image/png;base64,AA==",
            }

    settings = load_settings(
        {
            "CONNECTOR_CONFIG": "",
            "CONNECTOR_METADATA": "local",
            "CONNECTOR_STORAGE": "none",
            "CONNECTOR_SERVICENAME": "port-z",
        }
    )
    payload = build_payload(settings, [OAuthBackend()])
    service = Util.getServiceObject(payload)
    assert type(service).__name__ == "OAuth2Service"
    assert service.to_dict() == payload


@responses.activate
def test_registered_on_first_post(tmp_path) -> None:
    settings, payload = local_payload(tmp_path)
    post = responses.post(f"{TS}/service", json={"success": True})
    assert register(settings, payload, session=requests.Session()) == "registered"
    assert json.loads(post.calls[0].request.body) == payload


@responses.activate
def test_existing_identical_entry_is_kept(tmp_path) -> None:
    settings, payload = local_payload(tmp_path)
    responses.post(f"{TS}/service", json={"success": False, "message": "ServiceExistsAlreadyError"})
    responses.get(f"{TS}/service/port-local", json={"type": "LoginService", "data": payload})
    delete = responses.delete(f"{TS}/service/port-local", json={"success": True})
    assert register(settings, payload, session=requests.Session()) == "unchanged"
    assert delete.call_count == 0


@responses.activate
def test_changed_entry_is_deleted_and_posted_again(tmp_path) -> None:
    settings, payload = local_payload(tmp_path)
    stale = {**payload, "displayName": "old name"}
    responses.post(f"{TS}/service", json={"success": False, "message": "ServiceExistsAlreadyError"})
    second = responses.post(f"{TS}/service", json={"success": True})
    responses.get(f"{TS}/service/port-local", json=stale)
    delete = responses.delete(f"{TS}/service/port-local", json={"success": True})
    assert register(settings, payload, session=requests.Session()) == "replaced"
    assert delete.call_count == 1
    assert json.loads(second.calls[0].request.body) == payload


@responses.activate
def test_5xx_and_refused_connections_are_retried_with_capped_backoff(tmp_path) -> None:
    settings, payload = local_payload(tmp_path, REGISTRATION_MAX_DELAY="1")
    responses.post(f"{TS}/service", body=requests.ConnectionError("refused"))
    responses.post(f"{TS}/service", status=503)
    responses.post(f"{TS}/service", body=requests.ConnectionError("refused"))
    responses.post(f"{TS}/service", status=502)
    responses.post(f"{TS}/service", json={"success": True})
    clock = Clock()
    assert (
        register(settings, payload, session=requests.Session(), sleep=clock.sleep, clock=clock)
        == "registered"
    )
    assert clock.sleeps == [0.25, 0.5, 1.0, 1.0]


@responses.activate
def test_gives_up_at_the_deadline_with_a_message_that_says_what_failed(tmp_path) -> None:
    settings, payload = local_payload(tmp_path, REGISTRATION_DEADLINE="5")
    responses.post(f"{TS}/service", body=requests.ConnectionError("refused"))
    clock = Clock()
    with pytest.raises(RegistrationFailed, match="not reachable within REGISTRATION_DEADLINE=5s"):
        register(settings, payload, session=requests.Session(), sleep=clock.sleep, clock=clock)
    assert clock.now == pytest.approx(5.0)


@responses.activate
def test_bad_request_fails_at_once(tmp_path) -> None:
    settings, payload = local_payload(tmp_path)
    responses.post(f"{TS}/service", status=400, json={"success": False, "message": "BadRequest"})
    with pytest.raises(RegistrationFailed, match="BadRequest"):
        register(settings, payload, session=requests.Session())


def test_without_token_storage_registration_is_skipped_with_one_log_line(tmp_path, caplog) -> None:
    settings = load_settings({"CONNECTOR_CONFIG": "", "CONNECTOR_DATA_DIR": str(tmp_path)})
    with caplog.at_level("INFO"):
        assert register(settings, {"servicename": "port-local"}) == "skipped"
    assert [r.message for r in caplog.records if "registry" in r.message] == [
        "registry.skipped reason=CENTRAL_SERVICE_TOKEN_STORAGE is not set"
    ]


def test_passive_mode_is_registered_as_configured(tmp_path) -> None:
    _, payload = local_payload(tmp_path, CONNECTOR_FILE_TRANSFER_MODE="1")
    assert payload["fileTransferMode"] == 1
    assert Util.getServiceObject(payload).fileTransferMode.name == "passive"
