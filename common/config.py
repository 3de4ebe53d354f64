"""One frozen ``Settings``, read once from the environment or one YAML file.

Names are the ones existing RDS deployments already use (``CENTRAL_SERVICE_TOKEN_STORAGE``,
``USE_CASE_SERVICE_PORT_SERVICE``, ...), plus ``CONNECTOR_*`` for what is ours. The YAML
file (``/etc/rds-connector/config.yaml`` or ``CONNECTOR_CONFIG``) holds the same names as
top-level keys; the environment wins over it. Backend-specific names stay in ``raw`` and
are validated by the backend when it is built at start, so a missing value stops the
process with a message that names it. No setting has a default secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from common.errors import ConfigError

DEFAULT_CONFIG_PATH = "/etc/rds-connector/config.yaml"
METADATA_BACKENDS = ("local", "zenodo", "none")
STORAGE_BACKENDS = ("local", "webdav", "s3", "none")
CALLER_AUTH_MODES = ("none", "bearer", "google")
MIN_CALLER_SECRET = 16
SERVICENAME_RE = re.compile(r"^port-[a-z0-9][a-z0-9._-]*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Everything the connector reads from its configuration, validated."""

    port: int = 8080
    host: str = "0.0.0.0"
    metadata_backend: str = "local"
    storage_backend: str = "local"
    servicename: str = "port-local"
    data_dir: str = "./data"
    token_storage_url: str | None = None
    port_service_url: str | None = None
    redirect_uri: str | None = None
    verify_ssl: bool = True
    loglevel: str = "INFO"
    registration_deadline: float = 120.0
    registration_max_delay: float = 10.0
    file_transfer_mode: int = 0
    file_transfer_archive: int = 0
    max_json_bytes: int = 10 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    max_listing: int = 100_000
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    # Caller authentication (common/caller_auth.py): none | bearer | google.
    caller_auth: str = "none"
    caller_secret: str | None = field(default=None, repr=False)
    caller_audiences: tuple[str, ...] = ()
    caller_emails: tuple[str, ...] = ()
    # The merged source holds secrets: it never appears in a repr or a log line.
    raw: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def interfaces(self) -> set[str]:
        """The RDS interfaces this deployment implements."""
        out = set()
        if self.metadata_backend != "none":
            out.add("metadata")
        if self.storage_backend != "none":
            out.add("fileStorage")
        return out

    def get(self, name: str, default: str | None = None) -> str | None:
        """A raw setting by its variable name ('' counts as unset)."""
        value = self.raw.get(name)
        return value if value not in (None, "") else default

    def require(self, name: str) -> str:
        """A raw setting that must be present; ``ConfigError`` names it otherwise."""
        value = self.get(name)
        if value is None:
            raise ConfigError(f"{name} is required by this configuration but is not set")
        return value


def _read_yaml(path: Path) -> dict[str, str]:
    try:
        loaded: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.__class__.__name__}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of NAME: value")
    out: dict[str, str] = {}
    for key, value in loaded.items():
        if isinstance(value, (dict, list)):
            raise ConfigError(f"config file {path}: {key} must be a plain value")
        if value is None:
            continue
        if isinstance(value, bool):
            value = "True" if value else "False"
        out[str(key).upper()] = str(value)
    return out


def merged_source(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The YAML file's values overlaid by the environment's."""
    env = dict(os.environ if env is None else env)
    explicit = env.get("CONNECTOR_CONFIG")
    path = Path(explicit or DEFAULT_CONFIG_PATH)
    source: dict[str, str] = {}
    if explicit and not path.is_file():
        raise ConfigError(f"CONNECTOR_CONFIG names {path}, which is not a readable file")
    if path.is_file():
        source.update(_read_yaml(path))
    source.update(env)
    return source


def _int(src: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    text = src.get(name) or str(default)
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {text!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, not {value}")
    return value


def _float(src: Mapping[str, str], name: str, default: float) -> float:
    text = src.get(name) or str(default)
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {text!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {value}")
    return value


def parse_bool(name: str, text: str | None, default: bool) -> bool:
    """RDS writes "True"/"False"; accept the usual spellings, refuse anything else."""
    if text in (None, ""):
        return default
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConfigError(f"{name} must be True or False, not {text!r}")


def _url(src: Mapping[str, str], name: str) -> str | None:
    value = src.get(name) or None
    if value is None:
        return None
    if not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"{name} must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _list(text: str | None) -> tuple[str, ...]:
    """A comma- or space-separated setting as a tuple (empty items dropped)."""
    return tuple(item for item in re.split(r"[,\s]+", text or "") if item)


def _caller_auth(src: Mapping[str, str]) -> dict[str, Any]:
    """The caller-authentication fields; the mode's required value is named when missing."""
    mode = (src.get("CONNECTOR_CALLER_AUTH") or "none").lower()
    if mode not in CALLER_AUTH_MODES:
        raise ConfigError(f"CONNECTOR_CALLER_AUTH must be one of {CALLER_AUTH_MODES}, not {mode!r}")
    secret = src.get("CONNECTOR_CALLER_SECRET") or None
    audiences = _list(src.get("CONNECTOR_CALLER_AUDIENCE"))
    emails = _list(src.get("CONNECTOR_CALLER_EMAILS"))
    if mode == "bearer" and (secret is None or len(secret) < MIN_CALLER_SECRET):
        # The value itself is never part of the message.
        raise ConfigError(
            f"CONNECTOR_CALLER_SECRET must be set (at least {MIN_CALLER_SECRET} characters) "
            "when CONNECTOR_CALLER_AUTH is bearer"
        )
    if mode == "google" and not audiences:
        raise ConfigError(
            "CONNECTOR_CALLER_AUDIENCE must be set when CONNECTOR_CALLER_AUTH is google"
        )
    return {
        "caller_auth": mode,
        "caller_secret": secret if mode == "bearer" else None,
        "caller_audiences": audiences,
        "caller_emails": emails,
    }


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; ``ConfigError`` names the first bad value."""
    src = merged_source(env)
    metadata = (src.get("CONNECTOR_METADATA") or "local").lower()
    storage = (src.get("CONNECTOR_STORAGE") or "local").lower()
    if metadata not in METADATA_BACKENDS:
        raise ConfigError(
            f"CONNECTOR_METADATA must be one of {METADATA_BACKENDS}, not {metadata!r}"
        )
    if storage not in STORAGE_BACKENDS:
        raise ConfigError(f"CONNECTOR_STORAGE must be one of {STORAGE_BACKENDS}, not {storage!r}")
    if metadata == "none" and storage == "none":
        raise ConfigError(
            "CONNECTOR_METADATA and CONNECTOR_STORAGE are both 'none': nothing to serve"
        )
    default_name = f"port-{metadata if metadata != 'none' else storage}"
    servicename = src.get("CONNECTOR_SERVICENAME") or default_name
    if not SERVICENAME_RE.match(servicename):
        raise ConfigError(
            f"CONNECTOR_SERVICENAME must be lower case and start with 'port-', not {servicename!r}"
        )
    loglevel = (src.get("LOGLEVEL") or "INFO").upper()
    if loglevel not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"LOGLEVEL must be DEBUG, INFO, WARNING or ERROR, not {loglevel!r}")
    return Settings(
        port=_int(src, "PORT", 8080, 1, 65535),
        host=src.get("HOST") or "0.0.0.0",
        metadata_backend=metadata,
        storage_backend=storage,
        servicename=servicename,
        data_dir=src.get("CONNECTOR_DATA_DIR") or "./data",
        token_storage_url=_url(src, "CENTRAL_SERVICE_TOKEN_STORAGE"),
        port_service_url=_url(src, "USE_CASE_SERVICE_PORT_SERVICE"),
        redirect_uri=src.get("RDS_OAUTH_REDIRECT_URI") or None,
        verify_ssl=parse_bool("VERIFY_SSL", src.get("VERIFY_SSL"), True),
        loglevel=loglevel,
        registration_deadline=_float(src, "REGISTRATION_DEADLINE", 120.0),
        registration_max_delay=_float(src, "REGISTRATION_MAX_DELAY", 10.0),
        file_transfer_mode=_int(src, "CONNECTOR_FILE_TRANSFER_MODE", 0, 0, 2),
        file_transfer_archive=_int(src, "CONNECTOR_FILE_TRANSFER_ARCHIVE", 0, 0, 1),
        max_json_bytes=_int(src, "CONNECTOR_MAX_JSON_BYTES", 10 * 1024 * 1024, 1024, 2**31),
        max_header_bytes=_int(src, "CONNECTOR_MAX_HEADER_BYTES", 64 * 1024, 1024, 2**24),
        max_listing=_int(src, "CONNECTOR_MAX_LISTING", 100_000, 1, 10**8),
        connect_timeout=_float(src, "CONNECTOR_CONNECT_TIMEOUT", 10.0),
        read_timeout=_float(src, "CONNECTOR_READ_TIMEOUT", 600.0),
        **_caller_auth(src),
        raw=MappingProxyType(dict(src)),
    )
