"""Service-to-service identity: ID tokens on Google Cloud, nothing (and no error) elsewhere.

google-auth runs for real; only its transport is replaced (tests/support/google_fakes.py),
so ``fetch_id_token`` really pings the "metadata server", reads the service account and
asks the identity endpoint, and ``verify_oauth2_token`` really checks RS256 signatures.
"""

from __future__ import annotations

import pytest
import requests
from google.auth import _exponential_backoff, jwt
from google.auth import exceptions as gexc

from common.errors import UpstreamUnavailable
from common.gcp_auth import (
    CachingCertsTransport,
    IdTokenAuth,
    IdTokenSource,
    InvalidIdToken,
    outbound_auth_headers,
    verify_id_token,
)
from tests.support.google_fakes import (
    SA_EMAIL,
    Signer,
    certs_transport,
    metadata_transport,
    not_google_transport,
    offline_transport,
)

ON_GCP = {"K_SERVICE": "rds-port-zenodo-files-upload"}  # what Cloud Functions gen2 sets
AUDIENCE = "https://europe-west3-example.cloudfunctions.net/rds-port-zenodo-files-upload"


@pytest.fixture(autouse=True)
def _no_credentials_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("GCE_METADATA_HOST", raising=False)
    monkeypatch.delenv("GCE_METADATA_IP", raising=False)


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer()


def test_on_google_cloud_the_call_carries_an_id_token_for_the_target(signer: Signer) -> None:
    transport = metadata_transport(signer)
    source = IdTokenSource(transport, environ=ON_GCP)
    headers = outbound_auth_headers(AUDIENCE, source)
    scheme, token = headers["Authorization"].split(" ")
    assert scheme == "Bearer"
    claims = jwt.decode(token, certs={signer.kid: signer.cert_pem}, audience=AUDIENCE)
    assert claims["email"] == SA_EMAIL
    assert any("identity" in url and "audience=" in url for url in transport.calls)
    assert source.has_credentials is True


def test_tokens_are_cached_per_audience_until_near_expiry(signer: Signer) -> None:
    now = [1_000.0]
    calls: list[str] = []

    def fetch(_transport: object, audience: str) -> str:
        calls.append(audience)
        return signer.token(audience, iat=int(now[0]), exp=int(now[0]) + 3600)

    source = IdTokenSource(object(), fetch=fetch, clock=lambda: now[0], environ=ON_GCP)
    first = source.token(AUDIENCE)
    assert source.token(AUDIENCE) == first
    source.token(AUDIENCE + "-other")
    assert calls == [AUDIENCE, AUDIENCE + "-other"]
    now[0] += 3600 - 299  # inside the renewal margin: a new token is fetched
    source.token(AUDIENCE)
    assert calls == [AUDIENCE, AUDIENCE + "-other", AUDIENCE]


def test_without_google_credentials_calls_go_out_bare_and_the_answer_is_cached() -> None:
    transport = not_google_transport()
    source = IdTokenSource(transport, environ=ON_GCP)
    assert outbound_auth_headers(AUDIENCE, source) == {}
    asked = len(transport.calls)
    assert asked >= 1
    assert outbound_auth_headers(AUDIENCE + "/other", source) == {}
    assert len(transport.calls) == asked  # "no credentials" is remembered
    assert source.has_credentials is False


def test_an_unreachable_metadata_server_means_no_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_exponential_backoff.time, "sleep", lambda _s: None)
    source = IdTokenSource(offline_transport(), environ=ON_GCP)
    assert source.headers(AUDIENCE) == {}
    assert source.has_credentials is False


def test_a_failing_metadata_server_on_google_cloud_is_a_503_not_a_bare_call() -> None:
    def fetch(_transport: object, audience: str) -> str:
        raise gexc.RefreshError("metadata server answered 500")

    source = IdTokenSource(object(), fetch=fetch, environ=ON_GCP)
    with pytest.raises(UpstreamUnavailable, match="ID token"):
        source.token(AUDIENCE)
    assert source.has_credentials is None  # not cached: the next call tries again


def test_requests_auth_adds_the_header(signer: Signer) -> None:
    auth = IdTokenAuth(AUDIENCE, IdTokenSource(metadata_transport(signer), environ=ON_GCP))
    prepared = requests.Request("GET", AUDIENCE + "/metadata/project", auth=auth).prepare()
    assert prepared.headers["Authorization"].startswith("Bearer ey")
    bare = IdTokenAuth(AUDIENCE, IdTokenSource(not_google_transport(), environ=ON_GCP))
    prepared = requests.Request("GET", AUDIENCE, auth=bare).prepare()
    assert "Authorization" not in prepared.headers


def test_verify_accepts_a_google_signed_token_for_our_audience(signer: Signer) -> None:
    transport = CachingCertsTransport(certs_transport(signer))
    claims = verify_id_token(signer.token(AUDIENCE), [AUDIENCE], transport)
    assert claims["email"] == SA_EMAIL


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://someone-else.example"}, "audience"),
        ({"iss": "https://evil.example"}, "issuer"),
        ({"iat": 1_000, "exp": 4_600}, "expired"),
    ],
)
def test_verify_refuses_wrong_audience_issuer_or_expiry(
    signer: Signer, claims: dict, reason: str
) -> None:
    transport = certs_transport(signer)
    with pytest.raises(InvalidIdToken, match=reason):
        verify_id_token(signer.token(AUDIENCE, **claims), [AUDIENCE], transport)


def test_verify_refuses_a_token_signed_by_another_key(signer: Signer) -> None:
    forged = Signer(kid=signer.kid).token(AUDIENCE)
    with pytest.raises(InvalidIdToken):
        verify_id_token(forged, [AUDIENCE], certs_transport(signer))


def test_verify_checks_the_allowed_accounts(signer: Signer) -> None:
    token = signer.token(AUDIENCE)
    transport = certs_transport(signer)
    assert verify_id_token(token, [AUDIENCE], transport, emails=frozenset({SA_EMAIL}))
    with pytest.raises(InvalidIdToken, match="not allowed"):
        verify_id_token(token, [AUDIENCE], transport, emails=frozenset({"other@example.org"}))


def test_certificates_are_fetched_once_within_max_age(signer: Signer) -> None:
    now = [0.0]
    inner = certs_transport(signer, max_age=60)
    transport = CachingCertsTransport(inner, clock=lambda: now[0])
    for _ in range(3):
        verify_id_token(signer.token(AUDIENCE), [AUDIENCE], transport)
    assert len(inner.calls) == 1
    now[0] = 61.0
    verify_id_token(signer.token(AUDIENCE), [AUDIENCE], transport)
    assert len(inner.calls) == 2


def test_unreachable_certificate_endpoint_is_a_503(signer: Signer) -> None:
    with pytest.raises(UpstreamUnavailable):
        verify_id_token(signer.token(AUDIENCE), [AUDIENCE], offline_transport())


def test_off_google_cloud_nothing_is_asked_at_all() -> None:
    """No K_SERVICE, key file or metadata host: no metadata ping delays the first call."""
    transport = metadata_transport(Signer())
    source = IdTokenSource(transport, environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    assert source.headers(AUDIENCE) == {}
    assert transport.calls == []
    assert source.has_credentials is False
