"""Settings: env or one YAML file (env wins), validated with messages that name the value."""

from __future__ import annotations

import pytest

from common.config import load_settings
from common.errors import ConfigError


def test_defaults_are_the_local_backend_on_port_8080() -> None:
    s = load_settings({"CONNECTOR_CONFIG": ""})
    assert (s.port, s.host, s.metadata_backend, s.storage_backend) == (
        8080,
        "0.0.0.0",
        "local",
        "local",
    )
    assert s.servicename == "port-local"
    assert s.interfaces == {"metadata", "fileStorage"}
    assert s.token_storage_url is None


def test_yaml_file_is_read_and_environment_wins(tmp_path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("PORT: 9000\nCONNECTOR_SERVICENAME: port-from-yaml\nverify_ssl: false\n")
    s = load_settings({"CONNECTOR_CONFIG": str(cfg), "PORT": "9100"})
    assert s.port == 9100
    assert s.servicename == "port-from-yaml"
    assert s.verify_ssl is False


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"CONNECTOR_METADATA": "dropbox"}, "CONNECTOR_METADATA"),
        ({"CONNECTOR_STORAGE": "ftp"}, "CONNECTOR_STORAGE"),
        ({"CONNECTOR_METADATA": "none", "CONNECTOR_STORAGE": "none"}, "CONNECTOR_STORAGE"),
        ({"CONNECTOR_SERVICENAME": "Zenodo"}, "CONNECTOR_SERVICENAME"),
        ({"CENTRAL_SERVICE_TOKEN_STORAGE": "layer3"}, "CENTRAL_SERVICE_TOKEN_STORAGE"),
        ({"VERIFY_SSL": "maybe"}, "VERIFY_SSL"),
        ({"REGISTRATION_DEADLINE": "-1"}, "REGISTRATION_DEADLINE"),
        ({"CONNECTOR_CONFIG": "/nonexistent/config.yaml"}, "CONNECTOR_CONFIG"),
    ],
)
def test_bad_values_stop_with_a_message_that_names_them(env, named) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings({"CONNECTOR_CONFIG": "", **env})


def test_a_broken_yaml_file_is_named(tmp_path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("- a list\n- not a mapping\n")
    with pytest.raises(ConfigError, match=str(cfg)):
        load_settings({"CONNECTOR_CONFIG": str(cfg)})


def test_servicename_defaults_to_the_backend_and_none_leaves_an_interface_out() -> None:
    s = load_settings({"CONNECTOR_CONFIG": "", "CONNECTOR_METADATA": "none"})
    assert s.servicename == "port-local"
    assert s.interfaces == {"fileStorage"}


def test_settings_repr_never_shows_raw_values() -> None:
    s = load_settings({"CONNECTOR_CONFIG": "", "ZENODO_OAUTH_CLIENT_SECRET": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(s)
    assert s.get("ZENODO_OAUTH_CLIENT_SECRET") == "s3cr3t-value"
