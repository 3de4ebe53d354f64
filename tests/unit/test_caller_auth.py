"""Caller authentication through the router: off by default, bearer secret, Google ID token.

The probes stay open in every mode; refused calls are 401 problems with a
``WWW-Authenticate`` challenge; the secret never appears in a log line or an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient

from common import caller_auth
from common.config import load_settings
from common.errors import ConfigError
from common.gcp_auth import CachingCertsTransport
from common.runtime import Runtime
from local_router import build_app
from tests.conftest import uid
from tests.support.google_fakes import SA_EMAIL, Signer, certs_transport

SECRET = "s3cret-for-callers-0123456789"
AUDIENCE = "https://connector.example.org"
LIST = {"json": {"userId": uid()}}


def app_with(make_runtime: Callable[..., Runtime], **env: str) -> FlaskClient:
    return build_app(make_runtime(**env)).test_client()


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


@pytest.fixture
def google_certs(signer: Signer) -> Iterator[None]:
    caller_auth.use_transport(CachingCertsTransport(certs_transport(signer)))
    yield
    caller_auth.use_transport(CachingCertsTransport())


def test_off_by_default(client: FlaskClient) -> None:
    assert client.get("/metadata/project", **LIST).status_code == 200


def test_bearer_missing_credential_is_a_401_challenge(make_runtime) -> None:
    c = app_with(make_runtime, CONNECTOR_CALLER_AUTH="bearer", CONNECTOR_CALLER_SECRET=SECRET)
    resp = c.get("/metadata/project", **LIST)
    assert resp.status_code == 401
    assert resp.mimetype == "application/problem+json"
    assert resp.json["field"] == "Authorization"
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="rds-connector"'


def test_bearer_wrong_secret_is_refused_and_the_right_one_passes(make_runtime, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    c = app_with(make_runtime, CONNECTOR_CALLER_AUTH="bearer", CONNECTOR_CALLER_SECRET=SECRET)
    wrong = c.get("/metadata/project", headers={"Authorization": "Bearer nope"}, **LIST)
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    almost = c.get("/metadata/project", headers={"Authorization": f"Bearer {SECRET}x"}, **LIST)
    assert almost.status_code == 401
    basic = c.get("/metadata/project", headers={"Authorization": f"Basic {SECRET}"}, **LIST)
    assert basic.status_code == 401
    ok = c.get("/metadata/project", headers={"Authorization": f"Bearer {SECRET}"}, **LIST)
    assert ok.status_code == 200, ok.json
    for resp in (wrong, almost, basic, ok):
        assert SECRET not in resp.get_data(as_text=True)
    assert SECRET not in caplog.text


def test_probes_stay_open_when_callers_must_authenticate(make_runtime) -> None:
    c = app_with(make_runtime, CONNECTOR_CALLER_AUTH="bearer", CONNECTOR_CALLER_SECRET=SECRET)
    assert c.get("/healthz").status_code == 200
    metrics = c.get("/metrics")
    assert metrics.status_code == 200
    assert c.post("/metadata/project", **LIST).status_code == 401


def test_an_unauthenticated_upload_is_refused_before_its_body_is_read(make_runtime) -> None:
    c = app_with(make_runtime, CONNECTOR_CALLER_AUTH="bearer", CONNECTOR_CALLER_SECRET=SECRET)
    resp = c.post(
        "/storage/file",
        data={"userId": uid(), "filepath": "/a.bin", "file": (iter([b"x" * 1024]), "a.bin")},
    )
    assert resp.status_code == 401
    assert resp.headers.get("Connection") == "close"


def test_google_id_token_for_our_audience_passes(make_runtime, signer, google_certs) -> None:
    c = app_with(make_runtime, CONNECTOR_CALLER_AUTH="google", CONNECTOR_CALLER_AUDIENCE=AUDIENCE)
    token = signer.token(AUDIENCE)
    ok = c.get("/metadata/project", headers={"Authorization": f"Bearer {token}"}, **LIST)
    assert ok.status_code == 200, ok.json


@pytest.mark.parametrize(
    "claims",
    [{"aud": "https://other.example"}, {"iat": 1_000, "exp": 4_600}, {"iss": "https://x.example"}],
)
def test_google_wrong_token_is_a_401(make_runtime, signer, google_certs, claims) -> None:
    c = app_with(make_runtime, CONNECTOR_CALLER_AUTH="google", CONNECTOR_CALLER_AUDIENCE=AUDIENCE)
    token = signer.token(AUDIENCE, **claims)
    resp = c.get("/metadata/project", headers={"Authorization": f"Bearer {token}"}, **LIST)
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    assert token not in resp.get_data(as_text=True)


def test_google_allowed_accounts(make_runtime, signer, google_certs) -> None:
    c = app_with(
        make_runtime,
        CONNECTOR_CALLER_AUTH="google",
        CONNECTOR_CALLER_AUDIENCE=f"https://a.example, {AUDIENCE}",
        CONNECTOR_CALLER_EMAILS="someone-else@example.org",
    )
    token = signer.token(AUDIENCE)
    resp = c.get("/metadata/project", headers={"Authorization": f"Bearer {token}"}, **LIST)
    assert resp.status_code == 401
    c = app_with(
        make_runtime,
        CONNECTOR_CALLER_AUTH="google",
        CONNECTOR_CALLER_AUDIENCE=f"https://a.example, {AUDIENCE}",
        CONNECTOR_CALLER_EMAILS=SA_EMAIL,
    )
    resp = c.get("/metadata/project", headers={"Authorization": f"Bearer {token}"}, **LIST)
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CONNECTOR_CALLER_AUTH": "kerberos"}, "CONNECTOR_CALLER_AUTH"),
        ({"CONNECTOR_CALLER_AUTH": "bearer"}, "CONNECTOR_CALLER_SECRET"),
        (
            {"CONNECTOR_CALLER_AUTH": "bearer", "CONNECTOR_CALLER_SECRET": "short"},
            "CONNECTOR_CALLER_SECRET",
        ),
        ({"CONNECTOR_CALLER_AUTH": "google"}, "CONNECTOR_CALLER_AUDIENCE"),
    ],
)
def test_settings_name_what_the_mode_is_missing(env: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named) as info:
        load_settings({"CONNECTOR_CONFIG": "", **env})
    assert "short" not in str(info.value)


def test_the_secret_is_not_in_the_settings_repr() -> None:
    s = load_settings(
        {
            "CONNECTOR_CONFIG": "",
            "CONNECTOR_CALLER_AUTH": "BEARER",
            "CONNECTOR_CALLER_SECRET": SECRET,
        }
    )
    assert s.caller_auth == "bearer"
    assert s.caller_secret == SECRET
    assert SECRET not in repr(s)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        # alg "none", no signature: must never be accepted
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
        "eyJpc3MiOiJodHRwczovL2FjY291bnRzLmdvb2dsZS5jb20iLCJhdWQiOiJodHRwczovL2Nvbm5lY3Rvci5leGFtcGxlLm9yZyIsImV4cCI6NDEwMjQ0NDgwMH0.",
    ],
)
def test_google_mode_refuses_garbage_and_unsigned_tokens(make_runtime, google_certs, token) -> None:
    c = app_with(make_runtime, CONNECTOR_CALLER_AUTH="google", CONNECTOR_CALLER_AUDIENCE=AUDIENCE)
    resp = c.get("/metadata/project", headers={"Authorization": f"Bearer {token}"}, **LIST)
    assert resp.status_code == 401, resp.json
    assert resp.mimetype == "application/problem+json"
