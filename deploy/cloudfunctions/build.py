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
import compileall
import functools
import hashlib
import py_compile
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
    #: the account whose ID token (audience: the init function's URL) the init call carries
    #: when caller auth is google; defaults to ``service_account``
    init_service_account: str | None = None
    max_instances: int | None = None
    concurrency: int | None = None
    cpu: str | None = None

    @property
    def caller_auth(self) -> str:
        return (self.env.get("CONNECTOR_CALLER_AUTH") or "none").lower()

    @property
    def init_account(self) -> str | None:
        return self.init_service_account or self.service_account

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
#: requirements a function imports only under some configuration (the others -- flask,
#: requests, pyyaml, zipstream-ng, ... -- a function may import whatever the settings).
#: Every function builds all configured backends at its first request (``Runtime.build``),
#: so what a bundle needs follows from the deployment's settings:
OPTIONAL_REQUIREMENTS: dict[str, Callable[[Settings], bool]] = {
    # the router's alone: /metrics (a function deployed alone keeps no series) and the
    # image's gunicorn worker
    "prometheus-client": lambda s: False,
    "gevent": lambda s: False,
    # the s3 backend's client (common/backends/s3/)
    "boto3": lambda s: "s3" in (s.storage_backend, s.metadata_backend),
    # WebDAV PROPFIND answers (common/backends/webdav/)
    "defusedxml": lambda s: "webdav" in (s.storage_backend, s.metadata_backend),
    # caller auth's token check, and ID tokens for passive transfer's outbound calls
    # (common/gcp_auth.py imports it only then)
    "google-auth": lambda s: s.caller_auth == "google" or s.file_transfer_mode != 0,
}


def requirements_for(settings: Settings | None) -> str:
    """``requirements.txt`` for a bundle: the pinned runtime requirements, minus those the
    deployment's settings never import (all of them when ``settings`` is None)."""
    kept = []
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        name = line.split("==")[0].strip().lower()
        needed = OPTIONAL_REQUIREMENTS.get(name)
        if settings is not None and needed is not None and not needed(settings):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def build_bundle(route: Route, dest: Path, settings: Settings | None = None) -> Path:
    """``dest`` = main.py + common/ + requirements.txt (+ their bytecode): all a function
    needs, nothing else."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy2(FUNCTIONS / route.name / "main.py", dest / "main.py")
    shutil.copytree(
        ROOT / "common", dest / "common", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    (dest / "requirements.txt").write_text(requirements_for(settings), encoding="utf-8")
    compiled = compile_bytecode(dest)
    ignore = "" if compiled else "__pycache__/\n*.pyc\n"
    (dest / ".gcloudignore").write_text(ignore, encoding="utf-8")
    return dest


def compile_bytecode(dest: Path) -> bool:
    """Ship the bundle's bytecode, when this Python is the runtime's version.

    The platform's build compiles the installed requirements, not the function's source,
    and every instance starts from the image: without ``__pycache__`` in the upload, each
    cold start compiles ``common/`` anew (~25 ms of ~0.25 s, docs/benchmarks.md). The
    ``unchecked-hash`` form (PEP 552, what the platform uses for requirements) is never
    compared with the source's mtime, which an upload does not keep; a bundle is rebuilt,
    never edited. Another Python's bytecode would be ignored there, so none is shipped."""
    if f"python{sys.version_info.major}{sys.version_info.minor}" != RUNTIME:
        return False
    return bool(
        compileall.compile_dir(
            dest,
            quiet=2,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    )


def build_bundles(plan: Plan, settings: Settings | None = None) -> dict[str, Path]:
    """One bundle per route under ``plan.out``; answers function name -> folder."""
    settings = settings or load_settings({"CONNECTOR_CONFIG": "", **env_for_deploy(plan)})
    return {r.name: build_bundle(r, plan.out / plan.name(r), settings) for r in plan.routes}


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
    if plan.max_instances is not None:
        cmd.append(f"--max-instances={plan.max_instances}")
    if plan.concurrency is not None:
        cmd.append(f"--concurrency={plan.concurrency}")
    cpu = plan.cpu or ("1" if (plan.concurrency or 1) > 1 else None)
    if cpu:
        cmd.append(f"--cpu={cpu}")  # gen2 serves concurrent requests only with >= 1 CPU
    return cmd


def init_route(plan: Plan) -> Route:
    return next(r for r in plan.routes if r.name == "init")


def init_url(plan: Plan) -> str:
    route = init_route(plan)
    return plan.url(route) + route.path


def init_token_command(plan: Plan) -> list[str]:
    """The gcloud command that mints the init call's ID token.

    Caller auth off: the deploying user's own ID token (IAM, ``--no-allow-unauthenticated``,
    accepts it). Caller auth ``google``: the connector also checks the audience, and a user's
    token is minted for gcloud's client, not for the function; so the token is minted for the
    init function's URL as a service account (impersonated: the deploying user needs
    ``roles/iam.serviceAccountTokenCreator`` on it), with its email for
    ``CONNECTOR_CALLER_EMAILS``.
    """
    cmd = ["gcloud", "auth", "print-identity-token"]
    if plan.caller_auth == "google":
        audience = plan.url(init_route(plan))
        cmd += [
            f"--impersonate-service-account={plan.init_account}",
            f"--audiences={audience}",
            "--include-email",
        ]
    return cmd


def init_invoker_command(plan: Plan) -> list[str] | None:
    """With caller auth on, the init account must pass IAM too: ``run.invoker`` on init."""
    if plan.caller_auth != "google":
        return None
    return [
        "gcloud",
        "functions",
        "add-invoker-policy-binding",
        plan.name(init_route(plan)),
        f"--region={plan.region}",
        f"--project={plan.project}",
        f"--member=serviceAccount:{plan.init_account}",
    ]


def check_init_auth(plan: Plan, env: dict[str, str]) -> None:
    """With caller auth ``google`` the init call needs a service account to mint for, and
    that account must be one the connector lets in."""
    if plan.caller_auth != "google":
        return
    if not plan.init_account:
        raise ConfigError(
            "CONNECTOR_CALLER_AUTH is google: pass --init-service-account (or "
            "--service-account), the account whose ID token for the init function's URL "
            "the init call carries"
        )
    emails = [e.strip() for e in (env.get("CONNECTOR_CALLER_EMAILS") or "").split(",")]
    if any(emails) and plan.init_account not in emails:
        raise ConfigError(
            f"CONNECTOR_CALLER_EMAILS does not list {plan.init_account}, the account the init "
            "call carries a token of: add it, or pass another --init-service-account"
        )


@dataclass
class GatewaySteps:
    """Idempotent: the config is created unless it exists (its id is the document's hash,
    so an unchanged document is the same config); the gateway is created the first time
    and updated to the config afterwards."""

    config_exists: list[str]
    config_create: list[str]
    gateway_exists: list[str]
    gateway_create: list[str]
    gateway_update: list[str]


def gateway_steps(plan: Plan, spec: Path, text: str) -> GatewaySteps:
    """The API config from ``spec`` and the gateway serving it."""
    api = f"rds-{plan.service}" if plan.service else "rds"
    config_id = f"{api}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"
    project = f"--project={plan.project}"
    gw = ["gcloud", "api-gateway"]
    located = [api, f"--location={plan.region}", project]
    return GatewaySteps(
        config_exists=[*gw, "api-configs", "describe", config_id, f"--api={api}", project],
        config_create=[
            *gw,
            "api-configs",
            "create",
            config_id,
            f"--api={api}",
            f"--openapi-spec={spec}",
            f"--backend-auth-service-account={plan.gateway_service_account}",
            project,
        ],
        gateway_exists=[*gw, "gateways", "describe", *located],
        gateway_create=[
            *gw,
            "gateways",
            "create",
            *located[:1],
            f"--api={api}",
            f"--api-config={config_id}",
            *located[1:],
        ],
        gateway_update=[
            *gw,
            "gateways",
            "update",
            *located[:1],
            f"--api={api}",
            f"--api-config={config_id}",
            *located[1:],
        ],
    )


@dataclass
class Prepared:
    deploys: list[list[str]]
    init_url: str
    gateway: GatewaySteps | None
    init_token: list[str] = field(
        default_factory=lambda: ["gcloud", "auth", "print-identity-token"]
    )
    init_invoker: list[str] | None = None


def prepare(plan: Plan) -> Prepared:
    """Build bundles, env file and gateway document; answer the commands to run."""
    env = env_for_deploy(plan)
    settings = load_settings({"CONNECTOR_CONFIG": "", **env})  # a wrong value fails here
    check_init_auth(plan, env)
    for name in ("max_instances", "concurrency"):
        value = getattr(plan, name)
        if value is not None and not 1 <= value <= 1000:
            raise ConfigError(f"--{name.replace('_', '-')} must be between 1 and 1000")
    plan.out.mkdir(parents=True, exist_ok=True)
    bundles = build_bundles(plan, settings)
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
    gw = gateway_steps(plan, spec, text) if plan.gateway_service_account else None
    return Prepared(
        deploys,
        init_url(plan),
        gw,
        init_token=init_token_command(plan),
        init_invoker=init_invoker_command(plan),
    )


def print_plan(prepared: Prepared, write: Callable[[str], Any] = print) -> None:
    """The commands as a shell script (nothing runs)."""
    write("# 1. one Cloud Function per endpoint")
    for cmd in prepared.deploys:
        write(shlex.join(cmd))
    write("# 2. init once: login + registration with the Token Storage")
    if prepared.init_invoker:
        write(
            "# (caller auth is google: an ID token for the init URL, minted as a service account)"
        )
        write(shlex.join(prepared.init_invoker))
    write(
        f'curl -fsS -X POST -H "Authorization: Bearer $({shlex.join(prepared.init_token)})" '
        f"-H 'Content-Type: application/json' -d '{{}}' {shlex.quote(prepared.init_url)}"
    )
    if prepared.gateway:
        g = prepared.gateway
        write("# 3. the gateway routes (RDS paths -> function URLs); safe to run again")
        write(f"{shlex.join(g.config_exists)} >/dev/null 2>&1 || {shlex.join(g.config_create)}")
        write(f"if {shlex.join(g.gateway_exists)} >/dev/null 2>&1; then")
        write(f"  {shlex.join(g.gateway_update)}")
        write("else")
        write(f"  {shlex.join(g.gateway_create)}")
        write("fi")
    else:
        write("# 3. gateway: pass --gateway-service-account to get its commands")


def identity_token(
    audience: str,
    *,
    command: Sequence[str] = ("gcloud", "auth", "print-identity-token"),
    source: IdTokenSource | None = None,
    runner: Callable[..., Any] = subprocess.run,
) -> str:
    """An ID token for ``audience``: from Google credentials when this machine has them
    (a CI service account mints for any audience), else from ``command`` (the gcloud user
    that just deployed, or the service account it impersonates: ``init_token_command``)."""
    token = (source or IdTokenSource()).token(audience)
    if token:
        return token
    done = runner(list(command), capture_output=True, text=True, check=True)
    return str(done.stdout).strip()


def succeeds(cmd: list[str]) -> bool:
    """Whether ``cmd`` exits 0 (its output discarded): the ``describe`` probes."""
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def run_plan(
    prepared: Prepared,
    *,
    runner: Runner = lambda cmd: subprocess.run(cmd, check=True),
    probe: Callable[[list[str]], bool] = succeeds,
    session: requests.Session | None = None,
    token: Callable[[str], str] | None = None,
    write: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Deploy every function, call init once, then create or update the gateway; stop at
    the first failure (a deploy that failed is not followed by a registration)."""
    for cmd in prepared.deploys:
        write(f"+ {shlex.join(cmd[:4])} ...")
        runner(cmd)
    if prepared.init_invoker:
        runner(prepared.init_invoker)
    audience = prepared.init_url.rsplit("/", 1)[0]
    if token is None:
        minted = identity_token(audience, command=prepared.init_token)
    else:
        minted = token(audience)
    session = session or requests.Session()
    resp = session.post(
        prepared.init_url,
        json={},
        headers={"Authorization": f"Bearer {minted}"},
        timeout=(10, 360),
    )
    if resp.status_code != 200:
        raise SystemExit(f"init answered {resp.status_code}: {resp.text[:500]}")
    answer = resp.json()
    write(f"init: {answer}")
    g = prepared.gateway
    if g:
        steps = [] if probe(g.config_exists) else [g.config_create]
        steps.append(g.gateway_update if probe(g.gateway_exists) else g.gateway_create)
        for cmd in steps:
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
    d.add_argument(
        "--init-service-account",
        help="with CONNECTOR_CALLER_AUTH=google: the account the init call's ID token is "
        "minted for, by impersonation (default: --service-account)",
    )
    d.add_argument("--max-instances", type=int, help="per function (gcloud --max-instances)")
    d.add_argument(
        "--concurrency",
        type=int,
        help="requests per instance (gcloud --concurrency; above 1 also sets --cpu=1)",
    )
    d.add_argument("--cpu", help="vCPUs per instance (gcloud --cpu)")
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
            init_service_account=args.init_service_account,
            max_instances=args.max_instances,
            concurrency=args.concurrency,
            cpu=args.cpu,
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
