"""What an operator sees: strict configuration (every problem at once, unknown keys named),
the settings catalog kept complete, JSON logs, outside calls at DEBUG, metrics that move,
4xx access lines that say why, and credentials refused in the query string."""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import logging
import re
import subprocess
import sys

import pytest
import requests
import responses

from common import metrics, outside
from common.check import _shown
from common.config import KNOWN_NAMES, SETTING_NAMES, load_settings
from common.errors import ConfigError
from common.logs import JsonFormatter, configure
from common.registry import OVERRIDES
from common.runtime import Runtime, set_runtime
from local_router import build_app, create_app
from tests.support.servers import ROOT, router_process

BASE = {"CONNECTOR_CONFIG": ""}
UID = "port-local://alice@cloud.example.org:tok-ops-0123456789"


# -- strict configuration ----------------------------------------------------------------
def test_unknown_keys_of_the_file_are_named_with_the_nearest_name(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("CONECTOR_METADATA: zenodo\nPASIVE_MAX_FILES: 3\nNOTHING_LIKE_IT: 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"CONNECTOR_CONFIG": str(config), "UNRELATED_ENV_VARIABLE": "x"})
    problems = info.value.problems
    assert len(problems) == 3
    assert "did you mean CONNECTOR_METADATA?" in problems[0]
    assert "did you mean PASSIVE_MAX_FILES?" in problems[1]
    assert problems[2].startswith("NOTHING_LIKE_IT in ") and "did you mean" not in problems[2]


def test_every_bad_setting_of_every_component_is_named_in_one_error(tmp_path, monkeypatch) -> None:
    env = {
        **BASE,
        "CONNECTOR_DATA_DIR": str(tmp_path),
        "PORT": "eighty",
        "CONNECTOR_METADATA": "zenodo",
        "ZENODO_ADDRESS": "ftp://x",
        "PASSIVE_MAX_FILES": "ten",
        "PASSIVE_CONCURRENCY": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        Runtime.build()  # as a start does: settings, then each component, all gathered
    text = str(info.value)
    for name in (
        "PORT",
        "ZENODO_ADDRESS",
        "ZENODO_OAUTH_CLIENT_ID",
        "ZENODO_OAUTH_CLIENT_SECRET",
        "RDS_OAUTH_REDIRECT_URI",
        "PASSIVE_MAX_FILES",
        "PASSIVE_CONCURRENCY",
    ):
        assert name in text, text


def test_a_strict_start_names_every_problem_in_one_message_and_exits_2(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("CONECTOR_STORAGE: s3\n")
    env = {
        "CONNECTOR_CONFIG": str(config),
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "PASSIVE_MAX_FILES": "ten",
        "CONNECTOR_MAX_LISTING": "0",
    }
    with router_process(env, wait=False) as router:
        assert router.proc.wait(timeout=30) == 2
        log = router.log()
    assert "configuration error (3):" in log
    for expected in (
        "did you mean CONNECTOR_STORAGE?",
        "PASSIVE_MAX_FILES",
        "CONNECTOR_MAX_LISTING",
    ):
        assert expected in log
    assert "router.listening" not in log


def _declared_names(module: object) -> set[str]:
    out = set()
    for value in vars(module).values():
        if isinstance(value, type) and dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                if "setting" in f.metadata:
                    out.add(f.metadata["setting"].name)
    return out


def test_the_settings_catalog_matches_what_the_code_reads() -> None:
    """The catalog (no imports) against every backend's declared fields and every literal
    name the code reads with a helper: a new setting must join the catalog."""
    owners = {
        "passive": "common.passive_settings",
        "local": "common.backends.local",
        "zenodo": "common.backends.zenodo",
        "inveniordm": "common.backends.inveniordm",
        "webdav": "common.backends.webdav.storage",
        "s3": "common.backends.s3.storage",
    }
    for owner, module in owners.items():
        declared = _declared_names(importlib.import_module(module))
        assert declared <= set(SETTING_NAMES[owner]) | set(SETTING_NAMES["core"]), owner
    read = re.compile(
        r"\b(?:\w*setting|settings\.get|settings\.require|read)\(\s*(?:\w+,\s*)?"
        r"f?\"([A-Z][A-Z0-9_]+)"
    )
    found = set(OVERRIDES.values())  # read by name through a table
    for path in (ROOT / "common").rglob("*.py"):
        found |= set(read.findall(path.read_text("utf-8")))
    found = {n for n in found if not n.endswith("_")} | {
        n
        for n in KNOWN_NAMES
        if n.startswith("CONNECTOR_DESCRIPTION_")  # an f-string
    }
    assert found == set(KNOWN_NAMES)


# -- logs --------------------------------------------------------------------------------
def test_json_log_lines_parse_and_carry_no_secret() -> None:
    record = logging.LogRecord("rds.x", logging.INFO, __file__, 1, "hello %s", ("w",), None)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == ("INFO", "rds.x", "hello w")


@responses.activate
def test_debug_shows_each_outside_call_without_its_secrets(caplog) -> None:
    responses.add(
        responses.GET,
        "https://zenodo.example/api/x",
        body="{}",
        status=201,
        headers={"Content-Length": "2"},
    )
    session = outside.session("zenodo")
    before = _sample("rds_connector_outside_calls_total", service="zenodo", status="201")
    with caplog.at_level(logging.DEBUG, logger="rds.outside"):
        session.get(
            "https://zenodo.example/api/x?access_token=SECRET-Q",
            headers={"Authorization": "Bearer SECRET-H"},
        )
    (line,) = [r.getMessage() for r in caplog.records if r.name == "rds.outside"]
    assert line.startswith("outside.call service=zenodo method=GET host=zenodo.example")
    assert "path=/api/x status=201" in line and "received=2" in line
    assert "SECRET" not in line
    assert (
        _sample("rds_connector_outside_calls_total", service="zenodo", status="201") == before + 1
    )


def test_a_failed_outside_call_counts_under_its_failure() -> None:
    session = outside.session("token-storage")
    before = _sample(
        "rds_connector_outside_calls_total", service="token-storage", status="ConnectionError"
    )
    with pytest.raises(requests.ConnectionError):
        session.get("http://127.0.0.1:9/service/x", timeout=2)
    after = _sample(
        "rds_connector_outside_calls_total", service="token-storage", status="ConnectionError"
    )
    assert after == before + 1


def _sample(name: str, **labels: str) -> float:
    value = metrics.enable().registry.get_sample_value(name, labels)
    return value or 0.0


# -- requests: access lines, metrics, the query string -----------------------------------
@pytest.fixture
def client(make_runtime):
    return build_app(make_runtime()).test_client()


def test_a_4xx_access_line_says_why(client, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="rds.http"):
        resp = client.post("/metadata/project", json={"userId": "port-zenodo://a:b"})
    assert resp.status_code == 401
    title = resp.get_json()["title"]
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("access ")]
    assert "status=401" in line and f"title={title!r}" in line and "field=userId" in line


def test_userid_in_the_query_string_is_a_400_naming_it(client) -> None:
    resp = client.get(f"/metadata/project?userId={UID}")
    assert resp.status_code == 400
    assert resp.get_json()["field"] == "userId"
    resp = client.post("/metadata/project", query_string={"apiKey": "k"}, json={"userId": UID})
    assert (resp.status_code, resp.get_json()["field"]) == (400, "apiKey")


def test_metrics_count_bytes_transfers_and_time_to_the_last_byte(client) -> None:
    pid = client.post("/metadata/project", json={"userId": UID}).get_json()["projectId"]
    payload = b"x" * 100_000
    sent_before = _sample("rds_connector_bytes_total", backend="local", direction="sent")
    received_before = _sample("rds_connector_bytes_total", backend="local", direction="received")
    done_before = _sample("rds_connector_transfer_seconds_count", function="storage_file_get")
    # other tests may leave answers unread (a test client never closes them): a delta
    flying_before = _sample("rds_connector_transfers_in_flight", function="storage_file_get")
    resp = client.post(
        "/storage/file",
        data={"userId": UID, "filepath": "/r/a.bin", "file": (io.BytesIO(payload), "a.bin")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 200
    assert resp.get_json()["success"] is True  # the answer read to its end: the transfer ends
    got = client.get("/storage/file", json={"userId": UID, "filepath": "/r/a.bin"})
    assert got.get_data() == payload
    assert _sample("rds_connector_bytes_total", backend="local", direction="received") >= (
        received_before + len(payload)
    )
    assert _sample("rds_connector_bytes_total", backend="local", direction="sent") >= (
        sent_before + len(payload)
    )
    assert (
        _sample("rds_connector_transfer_seconds_count", function="storage_file_get")
        == done_before + 1
    )
    flying = _sample("rds_connector_transfers_in_flight", function="storage_file_get")
    assert flying == flying_before
    assert pid


def test_the_catalog_is_readable_without_importing_a_backend() -> None:
    code = (
        "import sys; from common.config import load_settings; load_settings({'CONNECTOR_CONFIG': ''}); "
        "print(any(m.startswith(('boto3', 'common.backends.')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


def test_shown_registration_values_mask_secrets() -> None:
    assert _shown("client_secret", "abc") == "***"
    assert _shown("displayName", "A") == "'A'"
    assert _shown("x", None) == "(missing)"


def test_configure_gives_gunicorn_handlers_our_format() -> None:
    logger = logging.getLogger("gunicorn.error")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        configure("INFO", "json")
        assert isinstance(handler.formatter, JsonFormatter)
        configure("INFO", "text")
        assert not isinstance(handler.formatter, JsonFormatter)
    finally:
        logger.removeHandler(handler)
        configure("INFO", "text")


def test_a_send_timeout_is_one_info_line_in_gunicorns_log_other_socket_errors_stay() -> None:
    """gunicorn logs a socket error of a request with its traceback at ERROR; for our own
    send timeout (the connection ends as meant) that becomes one INFO line."""
    logger = logging.getLogger("gunicorn.error")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        configure("INFO", "text")
        for exc in (TimeoutError("timed out"), ConnectionAbortedError(103, "aborted")):
            try:
                raise exc
            except OSError:
                logger.exception("Socket error processing request.")
    finally:
        logger.removeHandler(handler)
    first, *rest = stream.getvalue().splitlines()
    assert " INFO gunicorn.error Closing connection after a send timed out: timed out" in first
    assert " ERROR gunicorn.error Socket error processing request." in rest[0]
    assert any("Traceback" in line for line in rest)  # the other error keeps its traceback


@responses.activate
def test_init_at_start_is_counted_among_outside_calls(tmp_path, monkeypatch) -> None:
    """The router keeps its figures from before init: the Token Storage registration (the
    only call it makes to the Token Storage) shows in /metrics."""
    monkeypatch.setattr(metrics, "_series", None)  # as in a new process: nothing kept yet
    responses.post("http://token-storage.test/service", json={"success": True})
    env = {"CONNECTOR_CONFIG": "", "CONNECTOR_DATA_DIR": str(tmp_path)}
    runtime = Runtime.build(
        load_settings({**env, "CENTRAL_SERVICE_TOKEN_STORAGE": "http://token-storage.test"})
    )
    try:
        create_app(runtime)
    finally:
        set_runtime(None)
    assert len(responses.calls) == 1
    series = metrics._series
    assert series is not None
    labels = {"service": "token-storage", "status": "200"}
    assert series.registry.get_sample_value("rds_connector_outside_calls_total", labels) == 1
