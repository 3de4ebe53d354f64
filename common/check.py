"""``rds-connector check``: is this deployment well? Every problem at once, one line each.

It reads the configuration exactly as a start does (``runtime.assemble``: unknown keys of
the config file, bad values of the settings, of each configured backend and of passive
transfer), then asks the outside: the Token Storage reachable, our registration there
present and equal to what we would register (the difference shown, secrets masked), each
backend accepting our login. It changes nothing anywhere: no registration is posted.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import requests

from common import outside
from common.backends.base import LoginFailed
from common.config import Settings, read_settings
from common.errors import ConfigError, ConnectorError
from common.logs import redact
from common.registry import build_payload, differs
from common.retry import Policy
from common.runtime import Runtime, assemble

_NAME = re.compile(r"^[A-Z][A-Z0-9_]+")
_SECRET_KEY = re.compile(r"(?i)secret|password|token$|apikey")
_POLICY = Policy(attempts=2, base=0.25, exceptions=(requests.ConnectionError, requests.Timeout))


@dataclass(frozen=True)
class Finding:
    """One check's outcome: what was checked (``subject``: a setting or a service)."""

    check: str  # setting | token-storage | registration | login
    subject: str
    status: str  # ok | problem | skipped (it could not be asked: an earlier problem)
    detail: str

    @property
    def ok(self) -> bool:
        return self.status != "problem"

    def line(self) -> str:
        return f"{self.status.upper():8} {self.check} {self.subject}: {self.detail}"


def run_checks(env: dict[str, str] | None = None) -> list[Finding]:
    """Every check, in order; problems do not stop the later checks that can still run."""
    try:
        settings, found = read_settings(env)
    except ConfigError as exc:  # the config file itself is unreadable: nothing else to read
        return [_setting_problem(p) for p in exc.problems]
    runtime, problems = assemble(settings)
    if found:
        runtime = None
    findings = [_setting_problem(p) for p in found + problems.items]
    if not findings:
        findings.append(Finding("setting", "configuration", "ok", "every setting is valid"))
    findings += _token_storage(settings, runtime)
    if runtime is None:
        findings.append(Finding("login", "backends", "skipped", "the configuration has problems"))
    else:
        findings += _logins(runtime)
    return findings


def _setting_problem(problem: str) -> Finding:
    match = _NAME.match(problem)
    return Finding("setting", match[0] if match else "configuration", "problem", redact(problem))


def _token_storage(settings: Settings, runtime: Runtime | None) -> list[Finding]:
    url = settings.token_storage_url
    if not url:
        return [
            Finding(
                "token-storage",
                "CENTRAL_SERVICE_TOKEN_STORAGE",
                "skipped",
                "not set: this deployment registers nowhere",
            )
        ]
    session = runtime.session if runtime is not None else outside.session("token-storage")
    name = settings.servicename
    timeout = (settings.connect_timeout, min(settings.read_timeout, 30.0))
    try:
        resp = _POLICY.run(
            lambda: session.get(f"{url}/service/{quote(name)}", timeout=timeout),
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        return [
            Finding(
                "token-storage",
                "CENTRAL_SERVICE_TOKEN_STORAGE",
                "problem",
                f"{url} is not reachable ({exc.__class__.__name__})",
            )
        ]
    found = [Finding("token-storage", "CENTRAL_SERVICE_TOKEN_STORAGE", "ok", f"{url} answers")]
    if resp.status_code == 404:
        return [
            *found,
            Finding("registration", name, "problem", "not registered at the Token Storage"),
        ]
    if resp.status_code != 200:
        problem = f"the Token Storage answered {resp.status_code} to GET /service/{name}"
        return [*found, Finding("registration", name, "problem", problem)]
    if runtime is None:
        note = "not compared: the configuration has problems"
        return [*found, Finding("registration", name, "skipped", note)]
    return [*found, _registration(runtime, name, resp)]


def _registration(runtime: Runtime, name: str, resp: requests.Response) -> Finding:
    backends = [b for b in (runtime.archive, runtime.storage) if b is not None]
    try:
        payload = build_payload(runtime.settings, backends)
    except ConfigError as exc:
        return Finding("registration", name, "problem", str(exc))
    try:
        body = resp.json()
    except ValueError:
        body = {}
    stored = body.get("data") if isinstance(body, dict) and "type" in body else body
    stored = stored if isinstance(stored, dict) else {}
    changed = differs(stored, payload)
    if not changed:
        return Finding("registration", name, "ok", "registered and current")
    parts = [
        f"{k}: stored {_shown(k, stored.get(k))}, ours {_shown(k, payload[k])}" for k in changed
    ]
    return Finding("registration", name, "problem", "differs -- " + "; ".join(parts))


def _shown(key: str, value: Any) -> str:
    """A registration value for the eyes: secrets masked, long values cut."""
    if value is None:
        return "(missing)"
    if _SECRET_KEY.search(key):
        return "***"
    text = redact(repr(value))
    return text if len(text) <= 120 else text[:117] + "..."


def _logins(runtime: Runtime) -> list[Finding]:
    out = []
    for kind, backend in (("metadata", runtime.archive), ("fileStorage", runtime.storage)):
        if backend is None:
            continue
        backend_name = (
            runtime.settings.metadata_backend
            if kind == "metadata"
            else runtime.settings.storage_backend
        )
        name = f"{backend_name} ({kind})"  # one backend may serve both interfaces
        try:
            backend.login()
        except (LoginFailed, ConnectorError) as exc:
            out.append(Finding("login", name, "problem", redact(str(exc))))
        else:
            out.append(Finding("login", name, "ok", "accepted our login"))
    return out


def as_json(findings: list[Finding]) -> list[dict[str, Any]]:
    """The findings as a machine-readable list."""
    return [{**asdict(f), "ok": f.ok} for f in findings]
