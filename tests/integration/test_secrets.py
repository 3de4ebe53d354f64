"""No access token, client secret or password in any log line, answer or exception.

Uses ``tests/support/secrets.SecretWatch`` over: the redacting log chain itself, a whole
sync workflow plus every hostile-input case in process (logs at DEBUG, every answer, every
problem the functions raised), the same workflow against ``local_router.py`` as a process
(its stderr at LOGLEVEL=DEBUG, with a client secret in its environment), and the reprs of
the objects that hold secrets.
"""

from __future__ import annotations

import io
import logging

import pytest
import requests
import responses

from common.config import load_settings
from common.errors import ConnectorError
from common.identity import Identity, parse_user_id
from common.port_service import lookup_token
from common.runtime import Runtime
from tests.conftest import USER, uid
from tests.support.secrets import SecretWatch
from tests.support.servers import ServerThread, router_process
from tests.support.token_storage import TokenStorageDouble
from tests.unit.test_local_workflow import CRATE

TOKEN = "tok-Sk3y9Qz7wLdT"
PASSWORD = "pw-Hunter2Hunter2"
CLIENT_SECRET = "cs-9f8e7d6c5b4a"
STORED = "at-StoredInTokenStorage42"
PORT = "http://port.test/port-service"


def test_the_redactor_works_on_the_real_handler_chain() -> None:
    watch = SecretWatch([TOKEN, PASSWORD, CLIENT_SECRET])
    log = logging.getLogger("rds.test")
    with watch.capture_logs(raw=False):
        log.warning("calling with userId=port-zenodo://alice@x.org:%s", TOKEN)
        log.info("header Authorization: Bearer %s", TOKEN)
        log.info("payload {'client_secret': '%s', 'password': '%s'}", CLIENT_SECRET, PASSWORD)
        log.info('json {"access_token": "%s"}', TOKEN)
        logging.getLogger("urllib3.connectionpool").debug(
            "Starting new HTTPS connection: https://alice:%s@dav.example.org/x", PASSWORD
        )
        try:
            raise RuntimeError(f"upstream said access_token={TOKEN}")
        except RuntimeError:
            log.exception("request.crashed")
    assert watch.log_output.count("***") >= 6, watch.log_output
    assert "request.crashed" in watch.log_output and "RuntimeError" in watch.log_output
    watch.check()


def _hostile_cases(client, pid: str, user_id: str) -> list:
    """Every malformed request of the hostile-input tests, carrying the secret where it can."""
    other = f"port-zenodo://{USER}:{TOKEN}"
    big = {**CRATE, "@graph": [*CRATE["@graph"], {"@id": "#p", "t": "p" * 11_000_000}]}
    files = f"/metadata/project/{pid}/files"
    out = [
        client.post(
            "/metadata/project", data=f'{{"userId": "{user_id}', content_type="application/json"
        ),
        client.post("/metadata/project", data=f"userId={user_id}", content_type="text/plain"),
        client.get("/metadata/project", json={"userId": other}),
        client.get("/metadata/project", json={"userId": user_id + "\n"}),
        client.get("/metadata/project", json={"userId": user_id + "\udc80"}),
        client.get("/metadata/project", json={"apiKey": TOKEN}),
        client.patch(f"/metadata/project/{pid}", json={"userId": user_id, "metadata": big}),
        client.patch(f"/metadata/project/{pid}", json={"userId": user_id, "metadata": {"a": 1}}),
        client.get("/metadata/project", json={"userId": user_id}, headers={"X-Big": "a" * 70000}),
        client.get(f"/metadata/project/{'f' * 16}", json={"userId": user_id}),
        client.get("/storage/file", json={"userId": user_id, "filepath": "/../etc/passwd"}),
        client.post("/storage/folder", json={"userId": user_id}),
        client.put(f"/metadata/project/{pid}x", json={"userId": user_id}),
    ]
    for name in ("../x", "/../abs", "a\\b", "n\x00ul", "c\x1bt", "x" * 4096):
        out.append(
            client.post(
                files,
                data={"userId": user_id, "filename": name, "file": (io.BytesIO(b"x"), "f")},
                content_type="multipart/form-data",
            )
        )
    out.append(
        client.post(
            files,
            data={"userId": other, "filename": "a", "file": (io.BytesIO(b"x"), "f")},
            content_type="multipart/form-data",
        )
    )
    assert all(400 <= r.status_code < 500 for r in out), [r.status_code for r in out]
    return out


def _workflow(client, user_id: str) -> tuple[str, list]:
    out = []
    created = client.post("/metadata/project", json={"userId": user_id})
    pid = created.json["projectId"]
    out.append(created)
    out.append(
        client.patch(f"/metadata/project/{pid}", json={"userId": user_id, "metadata": CRATE})
    )
    for name in ("a.csv", "dir/b.bin"):
        out.append(
            client.post(
                f"/metadata/project/{pid}/files",
                data={"userId": user_id, "filename": name, "file": (io.BytesIO(b"data"), name)},
                content_type="multipart/form-data",
            )
        )
    out.append(client.get(f"/metadata/project/{pid}/files", json={"userId": user_id}))
    out.append(client.get(f"/metadata/project/{pid}/files/dir/b.bin", json={"userId": user_id}))
    out.append(client.get("/metadata/project", json={"userId": user_id}))
    out.append(
        client.post(
            "/storage/file",
            data={"userId": user_id, "filepath": "/r/a.csv", "file": (io.BytesIO(b"d"), "a")},
            content_type="multipart/form-data",
        )
    )
    out.append(client.get("/storage/folder", json={"userId": user_id, "filepath": "/r"}))
    out.append(client.get("/storage/file", json={"userId": user_id, "filepath": "/r/a.csv"}))
    out.append(client.get("/metrics"))
    assert all(r.status_code < 300 for r in out), [r.status_code for r in out]
    return pid, out


def test_workflow_and_every_error_case_leak_nothing_in_process(make_runtime) -> None:
    from local_router import build_app

    runtime = make_runtime(
        USE_CASE_SERVICE_PORT_SERVICE=PORT,
        ZENODO_OAUTH_CLIENT_SECRET=CLIENT_SECRET,
        CONNECTOR_MAX_JSON_BYTES=str(10 * 2**20),
    )
    client = build_app(runtime).test_client()
    watch = SecretWatch([TOKEN, PASSWORD, CLIENT_SECRET, STORED])
    with watch.capture_logs(), watch.capture_problems():
        for user_id in (uid(token=TOKEN), uid(token=PASSWORD)):
            pid, answers = _workflow(client, user_id)
            answers += _hostile_cases(client, pid, user_id)
            for resp in answers:
                watch.add_response(resp)
        # the bare form: the token comes from the Port service, here with its faults too
        runtime.archive.needs_token = True
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            url = f"{PORT}/user/{USER.replace('@', '%40')}/service/port-local"
            body = {
                "type": "OAuth2Token",
                "data": {"access_token": STORED, "refresh_token": STORED},
            }
            rsps.get(url, json=body)
            watch.add_response(client.get("/metadata/project", json={"userId": USER}))
            for status in (500, 503, 404):
                rsps.replace(responses.GET, url, json={"echo": STORED}, status=status)
                watch.add_response(client.get("/metadata/project", json={"userId": USER}))
            rsps.replace(responses.GET, url, body=requests.ConnectionError("reset by peer"))
            watch.add_response(client.get("/metadata/project", json={"userId": USER}))
    assert len(watch.texts) > 100
    watch.check()


def test_the_router_process_logs_no_secret_at_debug(tmp_path) -> None:
    ts = TokenStorageDouble()
    server = ServerThread(ts.app).start()
    env = {
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "CONNECTOR_CONFIG": "",
        "CENTRAL_SERVICE_TOKEN_STORAGE": server.url,
        "USE_CASE_SERVICE_PORT_SERVICE": server.url,
        "ZENODO_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "LOGLEVEL": "DEBUG",
        "CONNECTOR_MAX_HEADER_BYTES": "16384",
    }
    watch = SecretWatch([TOKEN, CLIENT_SECRET])
    try:
        with router_process(env) as router:
            base = router.url + "/metadata/project"
            user_id = uid(token=TOKEN)
            s = requests.Session()
            created = s.post(base, json={"userId": user_id}, timeout=30)
            pid = created.json()["projectId"]
            answers = [
                created,
                s.patch(f"{base}/{pid}", json={"userId": user_id, "metadata": CRATE}, timeout=30),
                s.post(
                    f"{base}/{pid}/files",
                    data={"userId": user_id, "filename": "x/y.bin", "username": USER},
                    files={"file": ("y.bin", b"payload")},
                    timeout=30,
                ),
                s.get(f"{base}/{pid}/files", json={"userId": user_id}, timeout=30),
                s.put(f"{base}/{pid}", json={"userId": user_id}, timeout=30),
                s.get(base, json={"userId": f"port-zenodo://{USER}:{TOKEN}"}, timeout=30),
                s.post(base, data=f'{{"userId": "{user_id}', timeout=30),
                s.get(base, json={"userId": user_id}, headers={"X-Big": "b" * 20000}, timeout=30),
            ]
            assert [r.status_code for r in answers] == [200, 200, 200, 200, 200, 401, 400, 431]
            for resp in answers:
                watch.add_response(resp)
            log = router.log()
            assert "access function=" in log and "init.login" in log
            watch.add_text("router stderr", log)
    finally:
        server.stop()
    watch.check()


def test_objects_and_exceptions_that_hold_secrets_do_not_show_them() -> None:
    watch = SecretWatch([TOKEN, CLIENT_SECRET, STORED])
    settings = load_settings(
        {
            "CONNECTOR_CONFIG": "",
            "ZENODO_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
            "CONNECTOR_DATA_DIR": "/tmp/x",
        }
    )
    watch.add_object(settings, "Settings")
    watch.add_object(Runtime(settings, None, None, requests.Session()), "Runtime")
    watch.add_object(Identity(USER, TOKEN, "port-local"), "Identity")
    watch.add_object(parse_user_id(uid(token=TOKEN), "port-local"), "parsed Identity")
    for bad in (f"port-zenodo://{USER}:{TOKEN}", f"port-local://:{TOKEN}", f"{TOKEN}\x00"):
        with pytest.raises(ConnectorError) as err:
            parse_user_id(bad, "port-local")
        watch.add_exception(err.value, "parse_user_id")
    with responses.RequestsMock() as rsps:
        for status in (500, 503, 401):
            rsps.get(f"{PORT}/user/alice/service/port-local", json={"t": STORED}, status=status)
            with pytest.raises(ConnectorError) as err:
                lookup_token(requests.Session(), PORT, "alice", "port-local")
            watch.add_exception(err.value, f"lookup {status}")
            rsps.reset()
    watch.check()


def test_the_watch_itself_finds_a_leak() -> None:
    watch = SecretWatch([TOKEN])
    watch.add_text("somewhere", "x " + TOKEN.replace("-", "%2D"))  # not a form it checks
    watch.add_text("answer", '{"detail": "bad token tok-Sk3y9Qz7wLdT"}')
    with pytest.raises(AssertionError) as err:
        watch.check()
    assert "secret #0 in answer" in str(err.value) and TOKEN not in str(err.value)
