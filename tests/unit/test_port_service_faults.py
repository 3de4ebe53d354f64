"""Faults of RDS's Port service during the token lookup of a bare-form userId.

The lookup is the one outside call the core makes per request. Each fault gets the right
problem answer, nothing is stored, and the stored token shows up nowhere (SecretWatch).
"""

from __future__ import annotations

import io

import pytest
import requests
import responses

from tests.conftest import USER
from tests.support.secrets import SecretWatch
from tests.unit.test_bad_input import problem

PORT = "http://port.test/port-service"
URL = f"{PORT}/user/{USER.replace('@', '%40')}/service/port-local"
STORED = "at-StoredTokenQ7x2"
GOOD = {"type": "OAuth2Token", "data": {"access_token": STORED, "refresh_token": "rt-" + STORED}}


@pytest.fixture
def app_client(make_runtime):
    from local_router import build_app

    runtime = make_runtime(USE_CASE_SERVICE_PORT_SERVICE=PORT)
    runtime.archive.needs_token = True  # as an OAuth archive: bare userIds need the lookup
    return build_app(runtime).test_client()


FAULTS = {
    "500": ({"json": {"error": STORED}, "status": 500}, 502, {}),
    "502": ({"body": "<html>bad gateway</html>", "status": 502}, 503, {}),
    "503 Retry-After": (
        {"status": 503, "headers": {"Retry-After": "7"}},
        503,
        {"Retry-After": "7"},
    ),
    "429 Retry-After": (
        {"status": 429, "headers": {"Retry-After": "30"}},
        503,
        {"Retry-After": "30"},
    ),
    "429 no Retry-After": ({"status": 429}, 503, {}),
    "504": ({"status": 504}, 503, {}),
    "reset": ({"body": requests.ConnectionError("connection reset by peer")}, 503, {}),
    "timeout": ({"body": requests.ReadTimeout("read timed out")}, 504, {}),
    "not JSON": ({"body": "<html>ok</html>", "status": 200}, 502, {}),
    "JSON list": ({"json": [STORED], "status": 200}, 401, {}),
    "no token": ({"json": {"data": {"access_token": None}}, "status": 200}, 401, {}),
    "404": ({"json": {"error": "TokenNotFoundError"}, "status": 404}, 401, {}),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_port_service_fault_is_the_right_problem_and_leaks_nothing(app_client, fault) -> None:
    spec, status, headers = FAULTS[fault]
    watch = SecretWatch([STORED])
    with watch.capture_logs(), watch.capture_problems(), responses.RequestsMock() as rsps:
        rsps.get(URL, **spec)
        resp = app_client.get("/metadata/project", json={"userId": USER})
        watch.add_response(resp)
    body = problem(resp, status, "userId" if status == 401 else None)
    for name, value in headers.items():
        assert resp.headers.get(name) == value
    if "Retry-After" not in headers:
        assert "Retry-After" not in resp.headers
    assert "port.test" not in body["detail"]  # no internal URL in the answer
    watch.check()


def test_the_lookup_happens_before_any_byte_is_stored(app_client, data_dir) -> None:
    with responses.RequestsMock() as rsps:
        rsps.get(URL, json=GOOD)
        created = app_client.post("/metadata/project", json={"userId": USER})
        assert created.status_code == 200
        pid = created.json["projectId"]
        rsps.replace(responses.GET, URL, status=503)
        resp = app_client.post(
            f"/metadata/project/{pid}/files",
            data={"userId": USER, "filename": "a.bin", "file": (io.BytesIO(b"z" * 1000), "a")},
            content_type="multipart/form-data",
        )
        problem(resp, 503)
        rsps.replace(responses.GET, URL, json=GOOD)
        listed = app_client.get(f"/metadata/project/{pid}/files", json={"userId": USER})
    assert listed.json == []
    assert not [p for p in data_dir.rglob("a.bin")]


def test_a_passing_fault_of_the_port_service_is_retried_under_the_one_policy() -> None:
    import requests as rq

    from common.port_service import lookup_token

    waits: list[float] = []
    url = "http://port.invalid/user/alice%40x.org/service/port-local"
    with responses.RequestsMock() as rsps:
        rsps.get(url, status=503)
        rsps.get(url, body=rq.ConnectionError("reset"))
        rsps.get(url, json={"type": "OAuth2Token", "data": {"access_token": "tok-ok"}})
        token = lookup_token(
            rq.Session(), "http://port.invalid", "alice@x.org", "port-local", sleep=waits.append
        )
        assert token == "tok-ok" and len(rsps.calls) == 3
    assert waits == [0.2, 0.4]
