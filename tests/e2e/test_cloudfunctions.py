"""One Cloud Function per endpoint: the deploy table, the printed gcloud commands, the init
call, and -- the acceptance test -- every bundle served alone by functions-framework.

No cloud is reachable: the print mode runs for real, the ``--run`` path runs with the
command runner and the HTTP session injected.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import functions_framework
import pytest
import requests
import responses
import yaml

from common.errors import ConfigError
from common.routes import ROUTES
from deploy.cloudfunctions import build
from deploy.cloudfunctions.table import SIZING, cloud_name, deployed_routes, service_slug
from local_router import FUNCTIONS as ROOT_FUNCTIONS
from tests.conftest import uid
from tests.support.servers import free_port, wait_for_port

VENV_BIN = Path(sys.executable).parent
SA = "rds-init@proj-1.iam.gserviceaccount.com"
CRATE = {
    "@context": "https://w3id.org/ro/crate/1.1/context",
    "@graph": [
        {"@id": "ro-crate-metadata.json", "@type": "CreativeWork", "about": {"@id": "./"}},
        {"@id": "./", "@type": "Dataset", "name": "Bundle test"},
    ],
}


def plan(tmp_path: Path, **env: str) -> build.Plan:
    return build.Plan(project="proj-1", region="europe-west3", out=tmp_path / "out", env=env)


# -- the table and names ---------------------------------------------------------------
def test_every_route_has_a_sizing_and_a_valid_unique_name() -> None:
    assert set(SIZING) == {r.name for r in ROUTES}
    names = [cloud_name(r.name, "zenodo") for r in deployed_routes()]
    assert len(set(names)) == len(names)
    assert cloud_name("files_upload") == "rds-files-upload"
    assert cloud_name("files_upload", service_slug("port-zenodo")) == "rds-zenodo-files-upload"
    assert service_slug("port-owncloud.Uni_X") == "owncloud-uni-x"
    for sizing in SIZING.values():
        assert 1 <= sizing.timeout <= 3600  # gen2 HTTP functions run at most 60 minutes


def test_a_name_cloud_functions_would_refuse_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a valid"):
        cloud_name("storage_file_delete", "x" * 50)


# -- print mode --------------------------------------------------------------------------
def test_print_mode_prints_one_deploy_per_function_then_init_then_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / "env.yaml"
    env_file.write_text("CONNECTOR_SERVICENAME: port-demo\nLOGLEVEL: INFO\n")
    code = build.main(
        [
            "deploy",
            "--project=proj-1",
            "--region=europe-west3",
            f"--out={tmp_path / 'out'}",
            f"--env-file={env_file}",
            "--secret=ZENODO_OAUTH_CLIENT_SECRET",
            "--secret=CONNECTOR_CALLER_SECRET=caller-secret:3",
            "--gateway-service-account=gw@proj-1.iam.gserviceaccount.com",
        ]
    )
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("gcloud")]
    deploys = [shlex.split(line) for line in lines if line.startswith("gcloud functions deploy")]
    assert [d[3] for d in deploys] == [cloud_name(r.name, "demo") for r in ROUTES]
    for cmd, route in zip(deploys, ROUTES, strict=True):
        flags = set(cmd[4:])
        sizing = SIZING[route.name]
        assert {
            "--gen2",
            "--trigger-http",
            "--no-allow-unauthenticated",
            "--runtime=python311",
            f"--entry-point={route.name}",
            f"--memory={sizing.memory}",
            f"--timeout={sizing.timeout}s",
            f"--env-vars-file={tmp_path / 'out' / 'env.yaml'}",
            f"--source={tmp_path / 'out' / cmd[3]}",
            "--set-secrets=CONNECTOR_CALLER_SECRET=caller-secret:3,"
            "ZENODO_OAUTH_CLIENT_SECRET=zenodo-oauth-client-secret:latest",
        } <= flags, cmd
        assert (tmp_path / "out" / cmd[3] / "main.py").is_file()
    out = (tmp_path / "out" / "env.yaml").read_text()
    assert yaml.safe_load(out) == {"CONNECTOR_SERVICENAME": "port-demo", "LOGLEVEL": "INFO"}
    gateway_cmds = [line for line in lines if "api-gateway" in line]
    assert len(gateway_cmds) == 1  # "describe || create" for the config; the gateway: if/else
    assert f"--openapi-spec={tmp_path / 'out' / 'gateway.yaml'}" in gateway_cmds[0]


def test_print_mode_shows_the_init_call_with_an_id_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build.print_plan(build.prepare(plan(tmp_path)))
    text = capsys.readouterr().out
    init_lines = [line for line in text.splitlines() if line.startswith("curl")]
    assert len(init_lines) == 1
    assert "gcloud auth print-identity-token" in init_lines[0]
    assert init_lines[0].endswith(
        "https://europe-west3-proj-1.cloudfunctions.net/rds-local-init/init"
    )


def test_a_metadata_only_service_deploys_only_metadata_functions(tmp_path: Path) -> None:
    prepared = build.prepare(plan(tmp_path, CONNECTOR_STORAGE="none"))
    names = {cmd[3] for cmd in prepared.deploys}
    assert "rds-local-files-upload" in names and "rds-local-init" in names
    assert not any("storage" in n for n in names)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("ZENODO_OAUTH_CLIENT_SECRET: abc\n", "Secret Manager"),
        ("PORT: '8080'\n", "PORT"),
        ("S3_SECRET_ACCESS_KEY: abc\n", "Secret Manager"),
    ],
)
def test_env_file_refuses_secrets_and_reserved_names(
    tmp_path: Path, content: str, named: str
) -> None:
    path = tmp_path / "env.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=named) as info:
        build.read_env_file(path)
    assert "abc" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "args", "named"),
    [
        ("CONNECTOR_METADATA: dropbox\n", [], "CONNECTOR_METADATA"),
        # caller auth google: the init call needs an account to mint its token as ...
        ("CONNECTOR_CALLER_AUTH: google\n", [], "--init-service-account"),
        # ... and one the connector lets in
        (
            f"CONNECTOR_CALLER_AUTH: google\nCONNECTOR_CALLER_EMAILS: other@{SA}\n",
            [f"--service-account={SA}"],
            "CONNECTOR_CALLER_EMAILS",
        ),
    ],
    ids=["bad-value", "no-init-account", "init-account-not-allowed"],
)
def test_a_wrong_setting_stops_the_deploy_before_anything_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, args: list[str], named: str
) -> None:
    env_file = tmp_path / "env.yaml"
    env_file.write_text(content)
    argv = ["deploy", "--project=p", "--region=r", f"--out={tmp_path / 'out'}", *args]
    assert build.main([*argv, f"--env-file={env_file}"]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_google_caller_auth_accepts_every_function_url_as_audience(tmp_path: Path) -> None:
    p = plan(tmp_path, CONNECTOR_CALLER_AUTH="google")
    p.service_account = SA
    build.prepare(p)
    env = yaml.safe_load((tmp_path / "out" / "env.yaml").read_text())
    audiences = env["CONNECTOR_CALLER_AUDIENCE"].split(",")
    assert len(audiences) == len(ROUTES)
    assert "https://europe-west3-proj-1.cloudfunctions.net/rds-local-files-upload" in audiences


# -- run mode, with the runner and the session injected ---------------------------------
@responses.activate
def test_run_mode_deploys_then_calls_init_once_with_an_id_token(tmp_path: Path) -> None:
    p = plan(tmp_path)
    p.gateway_service_account = "gw@proj-1.iam.gserviceaccount.com"
    prepared = build.prepare(p)
    ran: list[list[str]] = []
    init = responses.post(
        "https://europe-west3-proj-1.cloudfunctions.net/rds-local-init/init",
        json={"login": "ok", "registration": "registered", "servicename": "port-local"},
    )
    audiences: list[str] = []

    def token(audience: str) -> str:
        audiences.append(audience)
        return "id-token-for-test"

    answer = build.run_plan(
        prepared, runner=ran.append, probe=lambda _c: False, token=token, write=lambda _s: None
    )
    assert answer["registration"] == "registered"
    assert ran[: len(ROUTES)] == prepared.deploys
    gateway_steps = [c[:4] for c in ran[len(ROUTES) :]]
    assert gateway_steps == [
        ["gcloud", "api-gateway", "api-configs", "create"],
        ["gcloud", "api-gateway", "gateways", "create"],
    ]
    # The second deploy: the config (same document, same id) and the gateway exist.
    ran.clear()
    build.run_plan(
        prepared, runner=ran.append, probe=lambda _c: True, token=token, write=lambda _s: None
    )
    assert [c[:4] for c in ran[len(ROUTES) :]] == [["gcloud", "api-gateway", "gateways", "update"]]
    assert init.call_count == 2  # once per deploy
    assert init.calls[0].request.headers["Authorization"] == "Bearer id-token-for-test"
    assert audiences == ["https://europe-west3-proj-1.cloudfunctions.net/rds-local-init"] * 2


@responses.activate
def test_run_mode_stops_when_init_fails(tmp_path: Path) -> None:
    prepared = build.prepare(plan(tmp_path))
    responses.post(
        "https://europe-west3-proj-1.cloudfunctions.net/rds-local-init/init",
        status=503,
        json={"detail": "Token Storage unreachable"},
    )
    with pytest.raises(SystemExit, match="503"):
        build.run_plan(prepared, runner=lambda _c: None, token=lambda _a: "t", write=print)


@pytest.mark.parametrize("auth", ["none", "google"])
def test_identity_token_without_credentials_runs_the_printed_gcloud_command(
    tmp_path: Path, auth: str
) -> None:
    """No Google credentials here: the token comes from gcloud -- the deploying user's own
    with caller auth off, one minted for the init URL as the service account with it on."""
    p = plan(tmp_path, CONNECTOR_CALLER_AUTH=auth)
    p.service_account = SA
    prepared = build.prepare(p)

    class NoCredentials:
        def token(self, audience: str) -> None:
            return None

    calls: list[list[str]] = []

    def runner(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="id-token\n")

    got = build.identity_token(
        "https://x",
        command=prepared.init_token,
        source=NoCredentials(),
        runner=runner,  # type: ignore[arg-type]
    )
    assert got == "id-token"
    assert calls[0][:3] == ["gcloud", "auth", "print-identity-token"]
    expected = [
        f"--impersonate-service-account={SA}",
        "--audiences=https://europe-west3-proj-1.cloudfunctions.net/rds-local-init",
        "--include-email",
    ]
    assert calls[0][3:] == (expected if auth == "google" else [])


# -- acceptance: every bundle alone ------------------------------------------------------
def test_bundles_import_only_their_own_common(tmp_path: Path) -> None:
    """Without site's .pth files (so no editable install of this repo), each bundle's
    ``main`` imports, and every ``common`` module comes from the bundle itself."""
    bundles = build.build_bundles(plan(tmp_path))
    for bundle in bundles.values():
        # The runtime installs requirements.txt; it must pin the framework itself.
        assert "functions-framework==" in (bundle / "requirements.txt").read_text()
        # bytecode only of its own sources (none copied over from the repository's caches)
        for pyc in bundle.rglob("*.pyc"):
            assert Path(importlib.util.source_from_cache(str(pyc))).is_file(), pyc
    broken = build.build_bundle(ROUTES[0], tmp_path / "broken")
    (broken / "common" / "errors.py").unlink()
    probe = (
        "import importlib, sys\n"
        "site_packages, *dirs = sys.argv[1:]\n"
        "sys.path.append(site_packages)\n"
        "for d in dirs:\n"
        "    for m in [m for m in sys.modules if m == 'main' or m.split('.')[0] == 'common']:\n"
        "        del sys.modules[m]\n"
        "    sys.path.insert(0, d)\n"
        "    try:\n"
        "        importlib.import_module('main')\n"
        "    except ImportError as exc:\n"
        "        print('FAIL', d, exc.name)\n"
        "        continue\n"
        "    finally:\n"
        "        sys.path.remove(d)\n"
        "    outside = [m.__file__ for n, m in sys.modules.items()\n"
        "               if n.split('.')[0] == 'common' and not m.__file__.startswith(d)]\n"
        "    print('OK' if not outside else 'LEAK', d, outside)\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            probe,
            sysconfig.get_paths()["purelib"],
            *map(str, bundles.values()),
            str(broken),
        ],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == len(ROUTES) + 1, done.stdout + done.stderr
    assert all(line.startswith("OK") for line in lines[:-1]), done.stdout
    # The probe is able to fail: a bundle missing a module does not import.
    assert lines[-1].startswith("FAIL") and "common.errors" in lines[-1], lines[-1]


@pytest.mark.slow
def test_every_bundle_serves_alone_under_functions_framework(tmp_path: Path) -> None:
    """Build all bundles, start each with the venv's functions-framework on loopback
    (in parallel, outside the repo, no PYTHONPATH), then one valid and one invalid request
    to each."""
    bundles = build.build_bundles(plan(tmp_path))
    data = tmp_path / "data"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)},
        "CONNECTOR_DATA_DIR": str(data),
        "CONNECTOR_CONFIG": "",
        "PYTHONUNBUFFERED": "1",
    }
    env = {k: v for k, v in env.items() if not k.startswith(("CENTRAL_", "USE_CASE_"))}
    procs: dict[str, tuple[subprocess.Popen[bytes], int, Path]] = {}
    try:
        for name, bundle in bundles.items():
            port = free_port()
            log = tmp_path / f"{name}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [
                        str(VENV_BIN / "functions-framework"),
                        "--target",
                        name,
                        "--source",
                        str(bundle / "main.py"),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ],
                    cwd=tmp_path,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            procs[name] = (proc, port, log)
        for name, (proc, port, log) in procs.items():
            try:
                wait_for_port(port, timeout=90, proc=proc)
            except (RuntimeError, TimeoutError) as exc:
                raise AssertionError(f"{name}: {exc}\n{log.read_text()}") from exc
        urls = {name: f"http://127.0.0.1:{port}" for name, (_p, port, _l) in procs.items()}
        answered = drive_each_function(urls)
        assert answered == {r.name for r in ROUTES}
    finally:
        for proc, _port, _log in procs.values():
            proc.terminate()
        for proc, _port, _log in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def drive_each_function(urls: dict[str, str]) -> set[str]:
    """A valid and an invalid request to every function, in an order that gives each
    valid request the state it needs; answers the functions that passed both."""
    user = {"userId": uid()}
    done: set[str] = set()

    def call(name: str, method: str, path: str, expect: int, **kw: object) -> requests.Response:
        resp = requests.request(method, urls[name] + path, timeout=60, **kw)  # type: ignore[arg-type]
        assert resp.status_code == expect, (name, method, path, resp.status_code, resp.text)
        return resp

    def invalid(name: str, method: str, path: str) -> None:
        if name == "init":
            resp = requests.get(urls[name] + path, timeout=60)
            assert resp.status_code == 405, resp.text
        else:
            resp = requests.request(method, urls[name] + path, json={}, timeout=60)
            assert resp.status_code in (400, 401), (name, resp.status_code, resp.text)
        assert resp.headers["Content-Type"] == "application/problem+json", (name, resp.headers)
        done.add(name)

    def upload(name: str, path: str, fields: dict[str, str], content: bytes) -> None:
        files = {"file": ("a.csv", io.BytesIO(content), "text/csv")}
        call(name, "POST", path, 200, data={**user, **fields}, files=files)

    pid = call("project_create", "POST", "/metadata/project", 200, json=user).json()["projectId"]
    p = f"/metadata/project/{pid}"
    invalid("project_create", "POST", "/metadata/project")
    listing = call("projects_list", "GET", "/metadata/project", 200, json=user).json()
    assert any(x["projectId"] == pid for x in listing)
    invalid("projects_list", "GET", "/metadata/project")
    assert call("project_update", "PATCH", p, 200, json={**user, "metadata": CRATE}).json() == CRATE
    invalid("project_update", "PATCH", p)
    call("project_get", "GET", p, 200, json=user)
    invalid("project_get", "GET", p)
    upload("files_upload", f"{p}/files", {"filename": "raw/x.csv"}, b"depth,ph\n1,7\n")
    invalid("files_upload", "POST", f"{p}/files")
    listed = call("files_list", "GET", f"{p}/files", 200, json=user).json()
    assert [f["filename"] for f in listed] == ["raw/x.csv"]
    invalid("files_list", "GET", f"{p}/files")
    assert call("file_get", "GET", f"{p}/files/raw/x.csv", 200, json=user).json()["size"] == 13
    invalid("file_get", "GET", f"{p}/files/raw/x.csv")
    renamed = {**user, "filename": "raw/y.csv"}
    call("file_update", "PATCH", f"{p}/files/raw/x.csv", 200, json=renamed)
    invalid("file_update", "PATCH", f"{p}/files/raw/y.csv")
    call("file_delete", "DELETE", f"{p}/files/raw/y.csv", 200, json=user)
    invalid("file_delete", "DELETE", f"{p}/files/raw/y.csv")
    upload("files_upload", f"{p}/files", {"filename": "z.csv"}, b"z\n")
    call("files_delete", "DELETE", f"{p}/files", 200, json=user)
    assert call("files_list", "GET", f"{p}/files", 200, json=user).json() == []
    invalid("files_delete", "DELETE", f"{p}/files")
    assert call("project_publish", "PUT", p, 200, json=user).json()["DOI"]
    invalid("project_publish", "PUT", p)
    other = call("project_create", "POST", "/metadata/project", 200, json=user).json()
    call("project_delete", "DELETE", f"/metadata/project/{other['projectId']}", 204, json=user)
    invalid("project_delete", "DELETE", f"/metadata/project/{other['projectId']}")

    content = b"t,v\n" + b"1,2\n" * 1000
    upload("storage_file_post", "/storage/file", {"filepath": "/research/a.csv"}, content)
    invalid("storage_file_post", "POST", "/storage/file")
    folder = {**user, "filepath": "/research"}
    assert call("storage_folder_get", "GET", "/storage/folder", 200, json=folder).json() == {
        "files": ["a.csv"]
    }
    invalid("storage_folder_get", "GET", "/storage/folder")
    a_csv = {**user, "filepath": "/research/a.csv"}
    assert call("storage_file_get", "GET", "/storage/file", 200, json=a_csv).content == content
    invalid("storage_file_get", "GET", "/storage/file")
    moved = {**a_csv, "newfilepath": "/research/b.csv"}
    call("storage_file_patch", "PATCH", "/storage/file", 200, json=moved)
    invalid("storage_file_patch", "PATCH", "/storage/file")
    b_csv = {**user, "filepath": "/research/b.csv"}
    call("storage_file_delete", "DELETE", "/storage/file", 200, json=b_csv)
    invalid("storage_file_delete", "DELETE", "/storage/file")

    assert call("init", "POST", "/init", 200, json={}).json()["registration"] == "skipped"
    invalid("init", "POST", "/init")
    return done


# -- the printed script, run twice against a fake gcloud ------------------------------------
FAKE_GCLOUD = """#!/bin/sh
# A stand-in for gcloud: logs its arguments; api-configs and gateways exist once created.
echo "gcloud $*" >> "$FAKE_STATE/calls"
case "$1 $2 $3" in
  "auth print-identity-token "*) echo fake-id-token; exit 0 ;;
  "api-gateway api-configs describe"|"api-gateway gateways describe")
    test -e "$FAKE_STATE/$2-$4"; exit $? ;;
  "api-gateway api-configs create"|"api-gateway gateways create")
    if test -e "$FAKE_STATE/$2-$4"; then echo "ALREADY_EXISTS" >&2; exit 1; fi
    touch "$FAKE_STATE/$2-$4"; exit 0 ;;
esac
exit 0
"""
FAKE_CURL = """#!/bin/sh
echo "curl $*" >> "$FAKE_STATE/calls"
"""


def test_the_printed_script_runs_twice(tmp_path: Path) -> None:
    """The script ``deploy`` prints, run by sh with gcloud and curl replaced by fakes (no
    cloud, no network): the second run updates the gateway instead of failing."""
    out = io.StringIO()
    p = plan(tmp_path)
    p.gateway_service_account = "gw@proj-1.iam.gserviceaccount.com"
    build.print_plan(build.prepare(p), write=lambda line: out.write(line + "\n"))
    script = tmp_path / "deploy.sh"
    script.write_text("set -e\n" + out.getvalue())
    fakes, state = tmp_path / "bin", tmp_path / "state"
    fakes.mkdir()
    state.mkdir()
    for name, text in (("gcloud", FAKE_GCLOUD), ("curl", FAKE_CURL)):
        (fakes / name).write_text(text)
        (fakes / name).chmod(0o755)
    env = {"PATH": f"{fakes}:/usr/bin:/bin", "FAKE_STATE": str(state)}
    for _run in range(2):
        done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    calls = (state / "calls").read_text().splitlines()
    gateway = [c.split()[2:4] for c in calls if c.startswith("gcloud api-gateway")]
    assert [g for g in gateway if g[1] != "describe"] == [
        ["api-configs", "create"],
        ["gateways", "create"],
        ["gateways", "update"],  # the second run: the config exists, the gateway is updated
    ]
    assert sum(c.startswith("curl") for c in calls) == 2
    assert sum(c.startswith("gcloud functions deploy") for c in calls) == 2 * len(ROUTES)


# -- init with caller auth on -------------------------------------------------------------


def test_the_init_call_with_google_caller_auth_is_accepted_by_init(
    tmp_path: Path, make_runtime: Any
) -> None:
    """What the deploy prints mints a token for the init function's URL as a service
    account; the init function, configured from the deploy's own env file, accepts such a
    token (signed by a local key, checked by google-auth) and refuses the deploying user's
    own token (minted for gcloud's client), which the old script sent."""
    from common import caller_auth
    from common.gcp_auth import CachingCertsTransport
    from tests.support.google_fakes import Signer, certs_transport

    p = plan(tmp_path, CONNECTOR_CALLER_AUTH="google", CONNECTOR_CALLER_EMAILS=SA)
    p.init_service_account = SA
    printed: list[str] = []  # not capsys: the runtime's log handler must not keep its stream
    build.print_plan(build.prepare(p), write=printed.append)
    text = "\n".join(printed)
    (curl,) = [line for line in text.splitlines() if line.startswith("curl")]
    init_fn = "https://europe-west3-proj-1.cloudfunctions.net/rds-local-init"
    assert f"--impersonate-service-account={SA} --audiences={init_fn} --include-email" in curl
    assert "gcloud functions add-invoker-policy-binding rds-local-init" in text
    assert f"--member=serviceAccount:{SA}" in text

    env = yaml.safe_load((tmp_path / "out" / "env.yaml").read_text())
    make_runtime(**env)
    signer = Signer()
    caller_auth.use_transport(CachingCertsTransport(certs_transport(signer)))
    try:
        client = functions_framework.create_app(
            "init", str(tmp_path / "out" / "rds-local-init" / "main.py")
        ).test_client()
        minted = signer.token(init_fn, email=SA)
        resp = client.post("/init", json={}, headers={"Authorization": f"Bearer {minted}"})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        users_own = signer.token("32555940559.apps.googleusercontent.com", email="me@x.org")
        resp = client.post("/init", json={}, headers={"Authorization": f"Bearer {users_own}"})
        assert resp.status_code == 401
    finally:
        caller_auth.use_transport(CachingCertsTransport())


# -- bundles carry what their function imports; instance limits --------------------------
def requirement_names(bundle: Path) -> set[str]:
    lines = (bundle / "requirements.txt").read_text().splitlines()
    return {line.split("==")[0] for line in lines if line and not line.startswith("#")}


@pytest.mark.parametrize(
    ("env", "present", "absent"),
    [
        ({}, set(), {"boto3", "defusedxml", "google-auth"}),
        ({"CONNECTOR_STORAGE": "s3", "S3_BUCKET": "b"}, {"boto3"}, {"defusedxml", "google-auth"}),
        (
            {"CONNECTOR_CALLER_AUTH": "google", "CONNECTOR_FILE_TRANSFER_MODE": "0"},
            {"google-auth"},
            {"boto3", "defusedxml"},
        ),
        ({"CONNECTOR_FILE_TRANSFER_MODE": "1"}, {"google-auth"}, {"boto3"}),
    ],
    ids=["local", "s3", "caller-auth", "passive"],
)
def test_each_bundle_requires_only_what_the_configuration_imports(
    tmp_path: Path, env: dict[str, str], present: set[str], absent: set[str]
) -> None:
    p = plan(tmp_path, **env)
    if env.get("CONNECTOR_CALLER_AUTH"):
        p.service_account = SA
    build.prepare(p)
    for route in p.routes:
        names = requirement_names(tmp_path / "out" / p.name(route))
        assert {"functions-framework", "flask", "requests"} <= names
        assert present <= names and not (absent & names), (route.name, names)
        assert not {"prometheus-client", "gevent"} & names  # the router's alone


def run_probe(tmp_path: Path, code: str, *args: str, **env: str) -> Any:
    """Run ``code`` in a fresh interpreter on the ``local`` backend, outside the repository
    (no ``PYTHONPATH``); answer the JSON of its last line."""
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    clean.update(CONNECTOR_CONFIG="", CONNECTOR_DATA_DIR=str(tmp_path / "data"), **env)
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


BLOCKED_PROBE = """
import importlib.abc, json, sys
blocked = tuple(json.loads(sys.argv[1]))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith(blocked):
            raise ImportError(f"{name} is not in this bundle's requirements")
sys.meta_path.insert(0, Block())
import functions_framework
statuses = {}
for name, method, path, source in json.loads(sys.argv[2]):
    client = functions_framework.create_app(name, source).test_client()
    statuses[name] = client.open(path, method=method, json={"userId": "bundle"}).status_code
print(json.dumps(statuses))
"""


def test_local_bundles_serve_without_the_requirements_they_leave_out(tmp_path: Path) -> None:
    """Every function of a local deployment answers with boto3, defusedxml and google-auth
    made unimportable: their bundles do not install them."""
    p = plan(tmp_path)
    build.prepare(p)
    functions = [
        [
            r.name,
            r.method,
            r.path.replace("{project_id}", "0123456789abcdef").replace("{file_id:path}", "a"),
            str(tmp_path / "out" / p.name(r) / "main.py"),
        ]
        for r in p.routes
    ]
    blocked = ["boto3", "botocore", "s3transfer", "defusedxml", "google.auth", "google.oauth2"]
    blocked += ["prometheus_client", "gevent"]
    statuses = run_probe(tmp_path, BLOCKED_PROBE, json.dumps(blocked), json.dumps(functions))
    assert set(statuses) == {r.name for r in ROUTES}
    assert all(code < 500 for code in statuses.values()), statuses


BYTECODE_PROBE = """
import json, sys
import functions_framework
client = functions_framework.create_app("projects_list", sys.argv[1]).test_client()
resp = client.get("/metadata/project", json={"userId": "bytecode"})
print(json.dumps({"status": resp.status_code, "body": resp.get_json()}))
"""


def test_a_bundle_ships_the_bytecode_it_runs(tmp_path: Path) -> None:
    """Every module of a bundle has its bytecode beside it (unchecked-hash, compiled for the
    runtime's Python), the upload keeps it, and it is what runs: with the source of
    ``common/http.py`` broken after the build, the function still answers, in a process
    that writes no bytecode of its own (a fresh instance on the platform)."""
    route = next(r for r in ROUTES if r.name == "projects_list")
    bundle = build.build_bundle(route, tmp_path / "bundle")
    sources = [bundle / "main.py", *sorted((bundle / "common").rglob("*.py"))]
    ignore = (bundle / ".gcloudignore").read_text()
    if sys.version_info[:2] != (3, 11):  # the runtime is python311: its bytecode or none
        assert not list(bundle.rglob("*.pyc")) and "*.pyc" in ignore
        return
    assert "pyc" not in ignore and "__pycache__" not in ignore
    for source in sources:
        assert Path(importlib.util.cache_from_source(str(source))).is_file(), source
    (bundle / "common" / "http.py").write_text("raise RuntimeError('the source was read')\n")
    seen = run_probe(tmp_path, BYTECODE_PROBE, str(bundle / "main.py"), PYTHONDONTWRITEBYTECODE="1")
    assert seen == {"status": 200, "body": []}


def test_instance_limits_reach_every_deploy_command(tmp_path: Path) -> None:
    p = plan(tmp_path)
    p.max_instances, p.concurrency = 20, 8
    for cmd in build.prepare(p).deploys:
        assert {"--max-instances=20", "--concurrency=8", "--cpu=1"} <= set(cmd)
    p.concurrency = 1
    for cmd in build.prepare(p).deploys:
        assert "--concurrency=1" in cmd and not any(c.startswith("--cpu") for c in cmd)
    p.max_instances = 0
    with pytest.raises(ConfigError, match="--max-instances"):
        build.prepare(p)


# -- downloads over 32 MiB on the platform ----------------------------------------------
@pytest.mark.slow
def test_a_download_over_32_mib_streams_chunked_on_the_platform(
    tmp_path: Path, make_runtime: Any, data_dir: Path
) -> None:
    """On Cloud Functions (``K_SERVICE`` set) the download has no Content-Length, so Cloud
    Run's 32 MiB cap on non-streamed HTTP/1 answers does not apply: served by the bundle
    under functions-framework (gunicorn), 33 MiB arrive chunked and byte-exact; elsewhere
    the same answer carries its Content-Length."""
    make_runtime()
    content = os.urandom(1024 * 1024) * 33
    form = {"userId": "big", "filepath": "/big.bin", "file": (io.BytesIO(content), "big.bin")}
    post = functions_framework.create_app(
        "storage_file_post", str(ROOT_FUNCTIONS / "storage_file_post" / "main.py")
    ).test_client()
    assert post.post("/storage/file", data=form).status_code == 200
    route = next(r for r in ROUTES if r.name == "storage_file_get")
    source = build.build_bundle(route, tmp_path / "get")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CONNECTOR_CONFIG="", CONNECTOR_DATA_DIR=str(data_dir))
    for platform in ({"K_SERVICE": "rds-local-storage-file-get"}, {}):
        port = free_port()
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "functions-framework"),
                "--target=storage_file_get",
                f"--source={source / 'main.py'}",
                "--host=127.0.0.1",
                f"--port={port}",
            ],
            cwd=tmp_path,
            env={**env, **platform},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, timeout=60, proc=proc)
            with requests.get(
                f"http://127.0.0.1:{port}/storage/file",
                json={"userId": "big", "filepath": "/big.bin"},
                stream=True,
                timeout=60,
            ) as resp:
                assert resp.status_code == 200
                got = b"".join(resp.iter_content(1024 * 1024))
                headers = resp.headers
        finally:
            proc.terminate()
            proc.wait(20)
        assert got == content
        if platform:
            assert "Content-Length" not in headers
            assert headers["Transfer-Encoding"] == "chunked"
        else:
            assert headers["Content-Length"] == str(len(content))
