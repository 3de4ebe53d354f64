"""userId parsing (session and bare form), apiKey, token lookup, and RDS's own parser."""

from __future__ import annotations

import pytest
import requests
import responses
from RDS import LoginService, OAuth2Service, OAuth2Token, User, Util

from common.errors import Unauthorized, UpstreamUnavailable
from common.identity import parse_user_id
from common.port_service import lookup_token

SVC = "port-zenodo"


def test_session_form_splits_the_secret_at_the_last_colon() -> None:
    who = parse_user_id("port-zenodo://alice@cloud.example.org:8443:tok-123", SVC)
    assert (who.user, who.token, who.service) == ("alice@cloud.example.org:8443", "tok-123", SVC)


def test_bare_form_has_no_token_and_apikey_supplies_one() -> None:
    assert parse_user_id("alice", SVC).token is None
    assert parse_user_id("alice", SVC, api_key="k-1").token == "k-1"
    assert parse_user_id("port-zenodo://alice:None", SVC, api_key="k-2").token == "k-2"


@pytest.mark.parametrize(
    "value", [None, "", "None", 42, "port-zenodo://:tok", "a\x00b", "x" * 5000, "Port-Zen o://a:b"]
)
def test_missing_or_malformed_userid_is_401_naming_the_field(value) -> None:
    with pytest.raises(Unauthorized) as err:
        parse_user_id(value, SVC)
    assert err.value.field == "userId"


def test_a_session_form_for_another_service_is_refused() -> None:
    with pytest.raises(Unauthorized, match="port-owncloud"):
        parse_user_id("port-owncloud://alice:tok", SVC)


def test_prefix_without_port_is_normalised_like_rds_does() -> None:
    assert parse_user_id("zenodo://alice:tok", SVC).token == "tok"


def test_token_never_in_repr() -> None:
    assert "tok-secret" not in repr(parse_user_id("port-zenodo://alice:tok-secret", SVC))


@pytest.mark.parametrize("user", ["alice", "alice@cloud.example.org", "bob@uni.example.de:8443"])
def test_userids_built_by_rds_parse_token_parse_here(user) -> None:
    """Contract: RDS.Util.parseToken builds the session form exactly as Layer 2 sends it."""
    service = OAuth2Service(
        servicename=SVC,
        implements=["metadata"],
        authorize_url="https://z.example/oauth/authorize",
        refresh_url="https://z.example/oauth/token",
        client_id="cid",
        client_secret="cs",
    )
    token = OAuth2Token(User(user), service, "access-XYZ", "refresh-1")
    user_id = Util.parseToken(token)["userId"]
    who = parse_user_id(user_id, SVC)
    assert (who.user, who.token) == (user, "access-XYZ")


def test_rds_login_token_for_a_login_service_parses() -> None:
    service = LoginService(
        servicename="port-local", implements=["fileStorage"], userId=True, password=False
    )
    from RDS import LoginToken

    user_id = Util.parseToken(LoginToken(User("carol"), service, "pw"))["userId"]
    assert parse_user_id(user_id, "port-local").user == "carol"


@responses.activate
def test_lookup_reads_the_port_service_answer() -> None:
    responses.get(
        "http://port.test/port-service/user/alice%40x.org/service/port-zenodo",
        json={"type": "OAuth2Token", "data": {"access_token": "AT", "refresh_token": "RT"}},
    )
    assert (
        lookup_token(requests.Session(), "http://port.test/port-service", "alice@x.org", SVC)
        == "AT"
    )


@responses.activate
def test_lookup_404_is_401_and_unreachable_is_503() -> None:
    responses.get("http://port.test/user/alice/service/port-zenodo", status=404)
    with pytest.raises(Unauthorized):
        lookup_token(requests.Session(), "http://port.test", "alice", SVC)
    responses.get(
        "http://port.test/user/bob/service/port-zenodo", body=requests.ConnectionError("refused")
    )
    with pytest.raises(UpstreamUnavailable):
        lookup_token(requests.Session(), "http://port.test", "bob", SVC)
