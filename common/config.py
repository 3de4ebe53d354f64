"""One frozen ``Settings``, read once from the environment or one YAML file.

Names are the ones existing RDS deployments already use (``CENTRAL_SERVICE_TOKEN_STORAGE``,
``USE_CASE_SERVICE_PORT_SERVICE``, ...), plus ``CONNECTOR_*`` for what is ours. The YAML
file (``/etc/rds-connector/config.yaml`` or ``CONNECTOR_CONFIG``) holds the same names as
top-level keys; the environment wins over it. Backend-specific names stay in ``raw`` and
are validated by the module that owns them when it is built at start (the backends,
passive transfer), so a missing or bad value stops the process with a message that names
it. They read through the one set of helpers here (``int_setting``, ``url_setting`` ...),
directly or by declaring a settings dataclass of ``setting(...)`` fields that
``load_declared`` reads and checks. No setting has a default secret.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from common.errors import ConfigError

DEFAULT_CONFIG_PATH = "/etc/rds-connector/config.yaml"
METADATA_BACKENDS = ("local", "zenodo", "inveniordm", "none")
STORAGE_BACKENDS = ("local", "webdav", "s3", "none")
CALLER_AUTH_MODES = ("none", "bearer", "google")
LOGLEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
MIN_CALLER_SECRET = 16
SERVICENAME_RE = re.compile(r"^port-[a-z0-9][a-z0-9._-]*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


#: Every name the YAML file may hold, by the module that reads it. Kept here as names
#: rather than collected by importing the modules, so reading the file imports no backend
#: (boto3 alone costs about a second); ``tests/unit/test_settings_catalog.py`` imports every
#: backend, reads their declared fields and every literal name the code reads, and fails
#: when this table and the code disagree.
SETTING_NAMES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "core": _names(
            "PORT HOST CONNECTOR_METADATA CONNECTOR_STORAGE CONNECTOR_SERVICENAME "
            "CONNECTOR_DATA_DIR CENTRAL_SERVICE_TOKEN_STORAGE USE_CASE_SERVICE_PORT_SERVICE "
            "RDS_OAUTH_REDIRECT_URI VERIFY_SSL LOGLEVEL LOG_FORMAT REGISTRATION_DEADLINE "
            "REGISTRATION_MAX_DELAY CONNECTOR_FILE_TRANSFER_MODE "
            "CONNECTOR_FILE_TRANSFER_ARCHIVE CONNECTOR_MAX_JSON_BYTES "
            "CONNECTOR_MAX_HEADER_BYTES CONNECTOR_MAX_LISTING CONNECTOR_CONNECT_TIMEOUT "
            "CONNECTOR_READ_TIMEOUT CONNECTOR_BODY_IDLE_TIMEOUT CONNECTOR_SEND_IDLE_TIMEOUT "
            "CONNECTOR_CALLER_AUTH "
            "CONNECTOR_CALLER_SECRET "
            "CONNECTOR_CALLER_AUDIENCE CONNECTOR_CALLER_EMAILS"
        ),
        "registration": _names(
            "CONNECTOR_DISPLAYNAME CONNECTOR_ICON CONNECTOR_INFO_URL CONNECTOR_HELP_URL "
            "CONNECTOR_PROJECT_LINK_TEMPLATE CONNECTOR_DESCRIPTION_EN "
            "CONNECTOR_DESCRIPTION_DE CONNECTOR_METADATA_PROFILE"
        ),
        "passive": _names(
            "PASSIVE_STORAGE_URL_TEMPLATE PASSIVE_MAX_FILES PASSIVE_CONCURRENCY "
            "PASSIVE_ALLOWED_SERVICES"
        ),
        "local": ("LOCAL_DOI_PREFIX", "LOCAL_TEMP_MAX_AGE", "LOCAL_SWEEP_INTERVAL"),
        "zenodo": _names(
            "ZENODO_ADDRESS ZENODO_OAUTH_CLIENT_ID ZENODO_OAUTH_CLIENT_SECRET "
            "ZENODO_DISPLAYNAME ZENODO_INFO_URL ZENODO_HELP_URL ZENODO_ICON "
            "ZENODO_PROJECT_LINK_TEMPLATE ZENODO_REPLAY_WINDOW_MIB ZENODO_SPOOL_LIMIT_MIB "
            "ZENODO_MAX_RETRY_AFTER"
        ),
        "inveniordm": _names(
            "INVENIORDM_ADDRESS INVENIORDM_OAUTH_CLIENT_ID INVENIORDM_OAUTH_CLIENT_SECRET "
            "INVENIORDM_COMMUNITY INVENIORDM_DISPLAYNAME INVENIORDM_INFO_URL "
            "INVENIORDM_HELP_URL INVENIORDM_ICON INVENIORDM_PROJECT_LINK_TEMPLATE"
        ),
        "webdav": _names(
            "EFSS_SYSTEM OWNCLOUD_INSTALLATION_URL OWNCLOUD_INTERNAL_INSTALLATION_URL "
            "WEBDAV_AUTH WEBDAV_USER_ID OWNCLOUD_OAUTH_AUTHORIZE_URL OWNCLOUD_OAUTH_TOKEN_URL "
            "OWNCLOUD_OAUTH_CLIENT_ID OWNCLOUD_OAUTH_CLIENT_SECRET WEBDAV_DISCARD_DEADLINE "
            "WEBDAV_SWEEP_INTERVAL WEBDAV_TEMP_MAX_AGE"
        ),
        "s3": _names(
            "S3_BUCKET S3_PREFIX S3_ENDPOINT_URL S3_PART_SIZE S3_ACCESS_KEY_ID "
            "S3_SECRET_ACCESS_KEY S3_ADDRESSING_STYLE S3_REGION"
        ),
    }
)
KNOWN_NAMES = frozenset(name for names in SETTING_NAMES.values() for name in names)
T = TypeVar("T")


class Problems:
    """Collects ``ConfigError``s so that a start names every bad setting at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def take(self, read: Callable[[], T], fallback: T) -> T:
        """``read()``, or ``fallback`` with its problems noted when it raises ``ConfigError``."""
        try:
            return read()
        except ConfigError as exc:
            self.items.extend(exc.problems)
            return fallback

    def raise_any(self) -> None:
        """One ``ConfigError`` naming every problem noted, if any."""
        if self.items:
            raise ConfigError(problems=self.items)


def unknown_keys(keys: list[str], path: str) -> list[str]:
    """One problem per key of the config file that is no setting, with the nearest name."""
    out = []
    for key in keys:
        if key in KNOWN_NAMES:
            continue
        near = difflib.get_close_matches(key, sorted(KNOWN_NAMES), n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]}?)" if near else ""
        out.append(f"{key} in {path} is not a setting of this connector{hint}")
    return out


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
    log_format: str = "text"
    registration_deadline: float = 120.0
    registration_max_delay: float = 10.0
    file_transfer_mode: int = 0
    file_transfer_archive: int = 0
    max_json_bytes: int = 10 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    max_listing: int = 100_000
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    # Seconds one read of a request body may wait for bytes (common/body.py); then 408.
    body_idle_timeout: float = 60.0
    # Seconds one write of an answer (a 64 KiB download chunk; a JSON answer whole) may
    # take to reach the client (common/http.py); then the connection is closed. Generous:
    # a caller that forwards our download (the Exporter) pauses while its target paces.
    send_idle_timeout: float = 600.0
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
        import yaml  # only when there is a config file: a cold start without one skips it

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


def config_file(env: Mapping[str, str]) -> tuple[Path, dict[str, str]]:
    """The config file's path and its values (none when the default path has no file)."""
    explicit = env.get("CONNECTOR_CONFIG")
    path = Path(explicit or DEFAULT_CONFIG_PATH)
    if explicit and not path.is_file():
        raise ConfigError(f"CONNECTOR_CONFIG names {path}, which is not a readable file")
    return path, (_read_yaml(path) if path.is_file() else {})


def merged_source(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The YAML file's values overlaid by the environment's."""
    env = dict(os.environ if env is None else env)
    source = dict(config_file(env)[1])
    source.update(env)
    return source


# -- reading one variable ---------------------------------------------------------------
# Every helper takes the merged source (or a ``Settings``, whose ``raw`` it reads), treats
# '' as unset, and names the variable in its ``ConfigError``.
Source = Settings | Mapping[str, str]
_URL = re.compile(r"^https?://[^/\s]+")
_HOST_URL = re.compile(r"^https?://[^/\s]+$")


def _raw(src: Source, name: str) -> str | None:
    mapping = src.raw if isinstance(src, Settings) else src
    value = mapping.get(name)
    return value if value not in (None, "") else None


def text_setting(
    src: Source, name: str, default: str | None = None, *, required: bool = False
) -> str | None:
    """A text variable; ``required`` ones must be set."""
    value = _raw(src, name)
    if value is None and required:
        raise ConfigError(f"{name} is required by this configuration but is not set")
    return default if value is None else value


def int_setting(src: Source, name: str, default: int, lo: int, hi: int, *, unit: str = "") -> int:
    """A whole number between ``lo`` and ``hi`` (``unit`` only words the message)."""
    text = _raw(src, name) or str(default)
    of = f" of {unit}" if unit else ""
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number{of}, not {text!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(
            f"{name} must be between {lo} and {hi}{' ' + unit if unit else ''}, not {value}"
        )
    return value


def float_setting(src: Source, name: str, default: float, *, unit: str = "seconds") -> float:
    """A positive number (of seconds, unless ``unit`` says otherwise)."""
    text = _raw(src, name) or str(default)
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of {unit}, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive, finite number, not {text!r}")
    return value


def bool_setting(src: Source, name: str, default: bool) -> bool:
    """RDS writes "True"/"False"; accept the usual spellings, refuse anything else."""
    return parse_bool(name, _raw(src, name), default)


def parse_bool(name: str, text: str | None, default: bool) -> bool:
    """``text`` as a yes/no value of variable ``name``."""
    if text in (None, ""):
        return default
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConfigError(f"{name} must be True or False, not {text!r}")


def url_setting(
    src: Source,
    name: str,
    *,
    required: bool = False,
    default: str | None = None,
    host_only: bool = False,
) -> str | None:
    """An http(s) URL without its trailing '/'; ``host_only``: nothing after host[:port]."""
    value = text_setting(src, name, default, required=required)
    if value is None:
        return None
    if host_only:
        value = value.rstrip("/")
        if not _HOST_URL.match(value):
            raise ConfigError(f"{name} must be http(s)://host[:port], not {value!r}")
        return value
    if not _URL.match(value):
        raise ConfigError(f"{name} must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def choice_setting(src: Source, name: str, choices: tuple[str, ...], default: str) -> str:
    """One of ``choices`` (any case; answered as spelled in ``choices``)."""
    value = _raw(src, name) or default
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise ConfigError(f"{name} must be one of {choices}, not {value.lower()!r}")


def list_setting(src: Source, name: str) -> tuple[str, ...]:
    """A comma- or space-separated variable as a tuple (empty items dropped)."""
    return tuple(item for item in re.split(r"[,\s]+", _raw(src, name) or "") if item)


# -- a module's settings, declared -------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One variable a module reads: its name, kind, default and bounds."""

    name: str
    kind: str = "text"  # text | int | float | bool | url | host_url | choice | list
    default: Any = None
    lo: int = 0
    hi: int = 2**63
    choices: tuple[str, ...] = ()
    required: bool = False

    def read(self, src: Source) -> Any:
        """The variable's value from ``src``; ``ConfigError`` names it when it is wrong."""
        name, default = self.name, self.default
        if self.kind == "int":
            return int_setting(src, name, default, self.lo, self.hi)
        if self.kind == "float":
            return float_setting(src, name, default)
        if self.kind == "bool":
            return bool_setting(src, name, default)
        if self.kind in ("url", "host_url"):
            host_only = self.kind == "host_url"
            return url_setting(
                src, name, required=self.required, default=default, host_only=host_only
            )
        if self.kind == "choice":
            return choice_setting(src, name, self.choices, default)
        if self.kind == "list":
            return list_setting(src, name)
        if self.kind == "text":
            return text_setting(src, name, default, required=self.required)
        raise ValueError(f"{name}: no such kind of setting {self.kind!r}")


def setting(
    name: str, kind: str = "text", default: Any = None, *, secret: bool = False, **bounds: Any
) -> Any:
    """A field of a settings dataclass read from variable ``name`` (see ``load_declared``);
    a ``secret`` one stays out of the dataclass's repr."""
    spec = Setting(name, kind, default, **bounds)
    return field(default=default, repr=not secret, metadata={"setting": spec})


def load_declared(cls: type[T], src: Source) -> T:
    """An instance of the settings dataclass ``cls``, each ``setting`` field read from
    ``src`` and checked: a module declares its variables once and gets them all validated
    when it is built at start. One ``ConfigError`` names every bad one."""
    problems = Problems()
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        spec: Setting | None = f.metadata.get("setting")
        if spec is not None:
            values[f.name] = problems.take(functools.partial(spec.read, src), f.default)
    problems.raise_any()
    return cls(**values)


def _caller_auth(src: Mapping[str, str]) -> dict[str, Any]:
    """The caller-authentication fields; the mode's required value is named when missing."""
    mode = choice_setting(src, "CONNECTOR_CALLER_AUTH", CALLER_AUTH_MODES, "none")
    secret = text_setting(src, "CONNECTOR_CALLER_SECRET")
    audiences = list_setting(src, "CONNECTOR_CALLER_AUDIENCE")
    emails = list_setting(src, "CONNECTOR_CALLER_EMAILS")
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
    """Read and validate the settings; one ``ConfigError`` names every bad value."""
    settings, problems = read_settings(env)
    if problems:
        raise ConfigError(problems=problems)
    return settings


def read_settings(env: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
    """The settings and every problem found in them: unknown keys of the config file (the
    environment holds many unrelated variables; only the file's keys are checked) and bad
    values, each replaced by its default so the rest can still be checked."""
    env = dict(os.environ if env is None else env)
    path, from_file = config_file(env)
    src = {**from_file, **env}
    problems = Problems()
    problems.items.extend(unknown_keys(list(from_file), str(path)))

    def read(fn: Callable[..., T], *args: Any, fallback: Any = None) -> Any:
        return problems.take(lambda: fn(src, *args), fallback)

    metadata = read(
        choice_setting, "CONNECTOR_METADATA", METADATA_BACKENDS, "local", fallback="local"
    )
    storage = read(choice_setting, "CONNECTOR_STORAGE", STORAGE_BACKENDS, "local", fallback="local")
    if metadata == "none" and storage == "none":
        problems.items.append(
            "CONNECTOR_METADATA and CONNECTOR_STORAGE are both 'none': nothing to serve"
        )
    default_name = f"port-{metadata if metadata != 'none' else storage}"
    servicename = text_setting(src, "CONNECTOR_SERVICENAME", default_name) or default_name
    if not SERVICENAME_RE.match(servicename):
        problems.items.append(
            f"CONNECTOR_SERVICENAME must be lower case and start with 'port-', not {servicename!r}"
        )
        servicename = default_name
    settings = Settings(
        port=read(int_setting, "PORT", 8080, 1, 65535, fallback=8080),
        host=text_setting(src, "HOST") or "0.0.0.0",
        metadata_backend=metadata,
        storage_backend=storage,
        servicename=servicename,
        data_dir=text_setting(src, "CONNECTOR_DATA_DIR") or "./data",
        token_storage_url=read(url_setting, "CENTRAL_SERVICE_TOKEN_STORAGE"),
        port_service_url=read(url_setting, "USE_CASE_SERVICE_PORT_SERVICE"),
        redirect_uri=text_setting(src, "RDS_OAUTH_REDIRECT_URI"),
        verify_ssl=read(bool_setting, "VERIFY_SSL", True, fallback=True),
        loglevel=read(choice_setting, "LOGLEVEL", LOGLEVELS, "INFO", fallback="INFO"),
        log_format=read(choice_setting, "LOG_FORMAT", LOG_FORMATS, "text", fallback="text"),
        registration_deadline=read(float_setting, "REGISTRATION_DEADLINE", 120.0, fallback=120.0),
        registration_max_delay=read(float_setting, "REGISTRATION_MAX_DELAY", 10.0, fallback=10.0),
        file_transfer_mode=read(int_setting, "CONNECTOR_FILE_TRANSFER_MODE", 0, 0, 2, fallback=0),
        file_transfer_archive=read(
            int_setting, "CONNECTOR_FILE_TRANSFER_ARCHIVE", 0, 0, 1, fallback=0
        ),
        max_json_bytes=read(
            int_setting, "CONNECTOR_MAX_JSON_BYTES", 10 * 2**20, 1024, 2**31, fallback=10 * 2**20
        ),
        max_header_bytes=read(
            int_setting, "CONNECTOR_MAX_HEADER_BYTES", 64 * 1024, 1024, 2**24, fallback=64 * 1024
        ),
        max_listing=read(int_setting, "CONNECTOR_MAX_LISTING", 100_000, 1, 10**8, fallback=100_000),
        connect_timeout=read(float_setting, "CONNECTOR_CONNECT_TIMEOUT", 10.0, fallback=10.0),
        read_timeout=read(float_setting, "CONNECTOR_READ_TIMEOUT", 600.0, fallback=600.0),
        body_idle_timeout=read(float_setting, "CONNECTOR_BODY_IDLE_TIMEOUT", 60.0, fallback=60.0),
        send_idle_timeout=read(float_setting, "CONNECTOR_SEND_IDLE_TIMEOUT", 600.0, fallback=600.0),
        **read(_caller_auth, fallback={}),
        raw=MappingProxyType(src),
    )
    return settings, problems.items
