"""Settings read through one set of helpers, declared by the module that owns them, and all
checked when the process starts: a bad value stops the start and names the variable."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from common.config import (
    bool_setting,
    choice_setting,
    float_setting,
    int_setting,
    list_setting,
    load_declared,
    load_settings,
    setting,
    text_setting,
    url_setting,
)
from common.errors import ConfigError
from common.passive_settings import PassiveSettings
from common.runtime import Runtime
from tests.support.servers import router_process

BASE = {"CONNECTOR_CONFIG": ""}


@pytest.mark.parametrize(
    ("read", "value", "expected"),
    [
        (lambda s: int_setting(s, "X", 5, 1, 10), "7", 7),
        (lambda s: int_setting(s, "X", 5, 1, 10), "", 5),
        (lambda s: float_setting(s, "X", 1.5), "2.5", 2.5),
        (lambda s: bool_setting(s, "X", False), "True", True),
        (lambda s: url_setting(s, "X"), "https://h.example/a/", "https://h.example/a"),
        (lambda s: url_setting(s, "X", host_only=True), "http://h:81/", "http://h:81"),
        (lambda s: choice_setting(s, "X", ("DEBUG", "INFO"), "INFO"), "debug", "DEBUG"),
        (lambda s: list_setting(s, "X"), "a, b c", ("a", "b", "c")),
        (lambda s: text_setting(s, "X", "d"), "", "d"),
    ],
)
def test_helpers_read_a_value(read, value, expected) -> None:
    assert read({"X": value}) == expected
    assert read(load_settings({**BASE, "X": value})) == expected  # a Settings works too


@pytest.mark.parametrize(
    "read",
    [
        lambda s: int_setting(s, "X", 5, 1, 10),
        lambda s: float_setting(s, "X", 1.5),
        lambda s: bool_setting(s, "X", False),
        lambda s: url_setting(s, "X"),
        lambda s: url_setting(s, "X", host_only=True),
        lambda s: choice_setting(s, "X", ("a", "b"), "a"),
        lambda s: text_setting(s, "MISSING", required=True),
    ],
)
def test_helpers_name_the_variable_when_the_value_is_wrong(read) -> None:
    with pytest.raises(ConfigError, match=r"^(X|MISSING) "):
        read({"X": "ftp://ten/x"})


@dataclass(frozen=True)
class _Declared:
    size: int = setting("DECL_SIZE", "int", 3, lo=1, hi=9)
    token: str | None = setting("DECL_TOKEN", secret=True)


def test_a_declared_dataclass_is_read_checked_and_keeps_secrets_out_of_its_repr() -> None:
    got = load_declared(_Declared, {"DECL_SIZE": "4", "DECL_TOKEN": "s3cr3t"})
    assert (got.size, got.token) == (4, "s3cr3t")
    assert "s3cr3t" not in repr(got)
    assert load_declared(_Declared, {}) == _Declared()
    with pytest.raises(ConfigError, match="DECL_SIZE"):
        load_declared(_Declared, {"DECL_SIZE": "12"})


def test_passive_settings_are_read_once_at_start(make_runtime) -> None:
    runtime = make_runtime(PASSIVE_MAX_FILES="12", PASSIVE_CONCURRENCY="2")
    assert runtime.passive == PassiveSettings(
        storage_url_template="http://layer1-{service}", max_files=12, concurrency=2
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PASSIVE_MAX_FILES", "ten"),
        ("PASSIVE_CONCURRENCY", "0"),
        ("PASSIVE_STORAGE_URL_TEMPLATE", "layer1-{service}"),
    ],
)
def test_a_bad_passive_setting_stops_the_runtime_build(tmp_path, name, value) -> None:
    env = {**BASE, "CONNECTOR_DATA_DIR": str(tmp_path), name: value}
    with pytest.raises(ConfigError, match=name):
        Runtime.build(load_settings(env))


def test_a_bad_local_or_zenodo_setting_is_named() -> None:
    env = {**BASE, "CONNECTOR_METADATA": "zenodo", "ZENODO_OAUTH_CLIENT_ID": "cid"}
    with pytest.raises(ConfigError, match="ZENODO_OAUTH_CLIENT_SECRET"):
        Runtime.build(load_settings(env))


def test_bad_passive_max_files_stops_the_router_with_exit_2_naming_it(tmp_path) -> None:
    env = {**BASE, "CONNECTOR_DATA_DIR": str(tmp_path / "data"), "PASSIVE_MAX_FILES": "ten"}
    with router_process(env, wait=False) as router:
        assert router.proc.wait(timeout=30) == 2
        assert "PASSIVE_MAX_FILES" in router.log()
