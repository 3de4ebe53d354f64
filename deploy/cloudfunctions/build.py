"""One Cloud Function per endpoint: self-contained bundles, the gcloud commands, the init call.

    python -m deploy.cloudfunctions deploy --project P --region R --env-file env.yaml \
        --out build/cloudfunctions [--secret ZENODO_OAUTH_CLIENT_SECRET] [--run]
    python -m deploy.cloudfunctions gateway      # rewrite the committed gateway.yaml

``deploy`` builds ``<out>/<function>/`` for every route (``main.py`` = the function's own,
the ``common`` package, ``requirements.txt``), writes ``<out>/env.yaml`` and
``<out>/gateway.yaml``, and PRINTS the commands: ``gcloud functions deploy`` per function,
then one ``POST`` to the ``init`` function (login + Token Storage registration, which the
router does at start in Kubernetes), then the API Gateway commands. Only ``--run`` executes
them. Secrets never enter the env file: they are mounted from Secret Manager.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from common.config import Settings, load_settings
from common.errors import ConfigError
from common.gcp_auth import IdTokenSource
from common.routes import Route
from deploy.cloudfunctions import gateway
from deploy.cloudfunctions.table import (
    RUNTIME,
    cloud_name,
    deployed_routes,
    function_url,
    service_slug,
)

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
COMMITTED_GATEWAY = Path(__file__).resolve().parent / "gateway.yaml"
SECRET_SUFFIXES = ("_SECRET", "_PASSWORD", "_PRIVATE_KEY", "SECRET_ACCESS_KEY")
RESERVED = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")
Runner = Callable[[list[str]], Any]


@dataclass
class Plan:
    """Everything a deploy needs, decided before anything runs."""

    project: str
    region: str
    out: Path
    env: dict[str, str]
    secrets: dict[str, str] = field(default_factory=dict)
    service_account: str | None = None
    gateway_service_account: str | None = None

    @functools.cached_property
    def settings(self) -> Settings:
        """The settings the functions will run with, minus caller auth (completed per
        deploy by ``env_for_deploy``; names and routes do not depend on it)."""
        env = {k: v for k, v in self.env.items() if not k.startswith("CONNECTOR_CALLER_")}
        return load_settings({"CONNECTOR_CONFIG": "", **env})

    @property
    def service(self) -> str:
        """The service slug in every function name (``port-zenodo`` -> ``zenodo``)."""
        return service_slug(self.settings.servicename)

    @property
    def routes(self) -> list[Route]:
        """Only the interfaces this service implements (plus init) get functions."""
        return deployed_routes(self.settings.interfaces)

    def name(self, route: Route) -> str:
        return cloud_name(route.name, self.service)

    def url(self, route: Route) -> str:
        return function_url(self.project, self.region, self.name(route))


# -- bundles ---------------------------------------------------------------------------
def build_bundle(route: Route, dest: Path) -> Path:
    """``dest`` = main.py + common/ + requirements.txt: all a function needs, nothing else."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy2(FUNCTIONS / route.name / "main.py", dest / "main.py")
    shutil.copytree(
        ROOT / "common", dest / "common", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    shutil.copy2(ROOT / "requirements.txt", dest / "requirements.txt")
    (dest / ".gcloudignore").write_text("__pycache__/\n*.pyc\n", encoding="utf-8")
    return dest


def build_bundles(plan: Plan) -> dict[str, Path]:
    """One bundle per route under ``plan.out``; answers function name -> folder."""
    return {r.name: build_bundle(r, plan.out / plan.name(r)) for r in plan.routes}


# -- environment and secrets -----------------------------------------------------------
def read_env_file(path: Path | None) -> dict[str, str]:
    """The deploy's environment (YAML ``NAME: value``): no secrets, no reserved names."""
    if path is None:
        env: dict[str, str] = {}
    else:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of NAME: value")
        env = {str(k): _plain(v) for k, v in loaded.items() if v is not None}
    for name in env:
        if name.upper().endswith(SECRET_SUFFIXES):
            raise ConfigError(
                f"{name} looks like a secret: keep it in Secret Manager and pass --secret {name}"
            )
        if name in RESERVED:
            raise ConfigError(f"{name} is set by the Cloud Functions platform; remove it")
    return env


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def parse_secret(spec: str) -> tuple[str, str]:
    """``NAME`` or ``NAME=secret-id[:version]`` -> (NAME, ``secret-id:version``)."""
    name, _, ref = spec.partition("=")
    if not name or not name.replace("_", "").isalnum():
        raise ConfigError(f"--secret {spec!r}: give NAME or NAME=secret-id[:version]")
    ref = ref or name.lower().replace("_", "-")
    if ":" not in ref:
        ref += ":latest"
    return name, ref


def env_for_deploy(plan: Plan) -> dict[str, str]:
    """The env file's content; with Google caller auth and no audience given, every
    function's URL is an accepted audience (what the gateway and the init call mint)."""
    env = dict(plan.env)
    if (env.get("CONNECTOR_CALLER_AUTH") or "").lower() == "google" and not env.get(
        "CONNECTOR_CALLER_AUDIENCE"
    ):
        env["CONNECTOR_CALLER_AUDIENCE"] = ",".join(plan.url(r) for r in plan.routes)
    return env


# -- commands --------------------------------------------------------------------------
def deploy_command(plan: Plan, route: Route, source: Path, env_file: Path) -> list[str]:
    """``gcloud functions deploy`` for one function (gen2, HTTP, authenticated only)."""
    sizing = route.sizing
    cmd = [
        "gcloud",
        "functions",
        "deploy",
        plan.name(route),
        "--gen2",
        f"--project={plan.project}",
        f"--region={plan.region}",
        f"--runtime={RUNTIME}",
        f"--source={source}",
        f"--entry-point={route.name}",
        "--trigger-http",
        "--no-allow-unauthenticated",
        f"--memory={sizing.memory}",
        f"--timeout={sizing.timeout}s",
        f"--env-vars-file={env_file}",
    ]
    if plan.secrets:
        pairs = ",".join(f"{k}={v}" for k, v in sorted(plan.secrets.items()))
        cmd.append(f"--set-secrets={pairs}")
    if plan.service_account:
        cmd.append(f"--service-account={plan.service_account}")
    return cmd


def init_url(plan: Plan) -> str:
    route = next(r for r in plan.routes if r.name == "init")
    return plan.url(route) + route.path


def gateway_commands(plan: Plan, spec: Path, text: str) -> list[list[str]]:
    """Create an API config from ``spec`` (id from its hash: each change is a new config)
    and the gateway serving it."""
    api = f"rds-{plan.service}" if plan.service else "rds"
    config_id = f"{api}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"
    common = [f"--project={plan.project}"]
    return [
        [
            "gcloud",
            "api-gateway",
            "api-configs",
            "create",
            config_id,
            f"--api={api}",
            f"--openapi-spec={spec}",
            f"--backend-auth-service-account={plan.gateway_service_account}",
            *common,
        ],
        [
            "gcloud",
            "api-gateway",
            "gateways",
            "create",
            api,
            f"--api={api}",
            f"--api-config={config_id}",
            f"--location={plan.region}",
            *common,
        ],
    ]


@dataclass
class Prepared:
    deploys: list[list[str]]
    init_url: str
    gateway: list[list[str]]


def prepare(plan: Plan) -> Prepared:
    """Build bundles, env file and gateway document; answer the commands to run."""
    env = env_for_deploy(plan)
    load_settings({"CONNECTOR_CONFIG": "", **env})  # a wrong value fails here, named
    plan.out.mkdir(parents=True, exist_ok=True)
    bundles = build_bundles(plan)
    env_file = plan.out / "env.yaml"
    env_file.write_text(
        yaml.safe_dump(env, sort_keys=True, default_flow_style=False),
        encoding="utf-8",
    )
    deploys = [deploy_command(plan, r, bundles[r.name], env_file) for r in plan.routes]
    doc = gateway.build_document(
        plan.project, plan.region, plan.service, interfaces=plan.settings.interfaces
    )
    text = gateway.render(doc)
    spec = plan.out / "gateway.yaml"
    spec.write_text(text, encoding="utf-8")
    gw = gateway_commands(plan, spec, text) if plan.gateway_service_account else []
    return Prepared(deploys, init_url(plan), gw)


def print_plan(prepared: Prepared, write: Callable[[str], Any] = print) -> None:
    """The commands as a shell script (nothing runs)."""
    write("# 1. one Cloud Function per endpoint")
    for cmd in prepared.deploys:
        write(shlex.join(cmd))
    write("# 2. init once: login + registration with the Token Storage")
    write(
        'curl -fsS -X POST -H "Authorization: Bearer $(gcloud auth print-identity-token)" '
        f"-H 'Content-Type: application/json' -d '{{}}' {shlex.quote(prepared.init_url)}"
    )
    if prepared.gateway:
        write("# 3. the gateway routes (RDS paths -> function URLs)")
        for cmd in prepared.gateway:
            write(shlex.join(cmd))
    else:
        write("# 3. gateway: pass --gateway-service-account to get its commands")


def identity_token(
    audience: str,
    *,
    source: IdTokenSource | None = None,
    runner: Callable[..., Any] = subprocess.run,
) -> str:
    """An ID token for ``audience``: from Google credentials when this machine has them
    (a CI service account), else from the gcloud user that just deployed."""
    token = (source or IdTokenSource()).token(audience)
    if token:
        return token
    done = runner(
        ["gcloud", "auth", "print-identity-token"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def run_plan(
    prepared: Prepared,
    *,
    runner: Runner = lambda cmd: subprocess.run(cmd, check=True),
    session: requests.Session | None = None,
    token: Callable[[str], str] = identity_token,
    write: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Deploy every function, call init once, then create the gateway; stop at the first
    failure (a deploy that failed is not followed by a registration)."""
    for cmd in prepared.deploys:
        write(f"+ {shlex.join(cmd[:4])} ...")
        runner(cmd)
    audience = prepared.init_url.rsplit("/", 1)[0]
    session = session or requests.Session()
    resp = session.post(
        prepared.init_url,
        json={},
        headers={"Authorization": f"Bearer {token(audience)}"},
        timeout=(10, 360),
    )
    if resp.status_code != 200:
        raise SystemExit(f"init answered {resp.status_code}: {resp.text[:500]}")
    answer = resp.json()
    write(f"init: {answer}")
    for cmd in prepared.gateway:
        write(f"+ {shlex.join(cmd[:5])} ...")
        runner(cmd)
    return answer


# -- CLI -------------------------------------------------------------------------------
def write_committed_gateway(path: Path = COMMITTED_GATEWAY) -> str:
    """The placeholder document for the default service (what the repo keeps)."""
    service = service_slug(load_settings({"CONNECTOR_CONFIG": ""}).servicename)
    text = gateway.render(gateway.build_document(service=service))
    path.write_text(text, encoding="utf-8")
    return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deploy.cloudfunctions", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("deploy", help="build bundles and print (or --run) the gcloud commands")
    d.add_argument("--project", required=True)
    d.add_argument("--region", required=True)
    d.add_argument("--out", type=Path, default=ROOT / "build" / "cloudfunctions")
    d.add_argument("--env-file", type=Path, help="YAML NAME: value (no secrets)")
    d.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME[=ID[:VERSION]]",
        help="mount a Secret Manager secret as env var NAME (repeatable)",
    )
    d.add_argument("--service-account", help="the functions' runtime service account")
    d.add_argument("--gateway-service-account", help="the identity the gateway calls with")
    d.add_argument("--run", action="store_true", help="execute the commands (default: print)")
    sub.add_parser("gateway", help=f"rewrite {COMMITTED_GATEWAY.relative_to(ROOT)}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "gateway":
            write_committed_gateway()
            print(f"wrote {COMMITTED_GATEWAY}")
            return 0
        plan = Plan(
            project=args.project,
            region=args.region,
            out=args.out.resolve(),
            env=read_env_file(args.env_file),
            secrets=dict(parse_secret(s) for s in args.secret),
            service_account=args.service_account,
            gateway_service_account=args.gateway_service_account,
        )
        prepared = prepare(plan)
    except (ConfigError, OSError, yaml.YAMLError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.run:
        try:
            run_plan(prepared)
        except subprocess.CalledProcessError as exc:
            print(f"error: {shlex.join(exc.cmd[:4])} failed with {exc.returncode}", file=sys.stderr)
            return 1
    else:
        print_plan(prepared)
    return 0
