"""The Kubernetes deployments as applied: each kustomization built by ``kubectl kustomize``
(offline: local files only), every resource valid for a current Kubernetes (offline
schemas, strict), and each consistent with the image, the router, the RDS naming
(``layer1-port-<name>``) and its backend.

Three builds: ``deploy/kubernetes`` (the default: ``local`` backend, one replica, a
PersistentVolumeClaim, no HPA) and ``overlays/zenodo`` and ``overlays/webdav`` (replicas and
an HPA). A process runs (kubectl), hence e2e.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from common.backends import build_archive, build_storage
from common.config import load_settings
from local_router import build_app
from tests.support.servers import ROOT

K8S = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.37.0"  # the newest schemas kubernetes-validate 1.37 ships
BUILDS = {
    "local": K8S,
    "zenodo": K8S / "overlays" / "zenodo",
    "webdav": K8S / "overlays" / "webdav",
}
SCALED = ("zenodo", "webdav")
#: what each build's Secret would hold (the tests' stand-ins: the builds hold no Secret)
SECRETS = {
    "local": {},
    "zenodo": {"ZENODO_OAUTH_CLIENT_SECRET": "test-only"},
    "webdav": {"OWNCLOUD_OAUTH_CLIENT_SECRET": "test-only"},
}
Docs = dict[str, dict[str, Any]]  # kind -> the one resource of that kind


def kustomize(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed to build the manifests"
    done = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict[str, Any]]]:
    return {name: kustomize(folder) for name, folder in BUILDS.items()}


def by_kind(docs: list[dict[str, Any]]) -> Docs:
    out: Docs = {}
    for doc in docs:
        assert doc["kind"] not in out, f"two {doc['kind']}s"
        out[doc["kind"]] = doc
    return out


def container(docs: Docs) -> dict[str, Any]:
    (only,) = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    return only


def config(docs: Docs) -> dict[str, str]:
    return dict(docs["ConfigMap"]["data"])


@pytest.mark.parametrize("name", BUILDS)
def test_every_built_resource_is_valid_for_current_kubernetes_strictly(
    built: dict[str, list[dict[str, Any]]], name: str
) -> None:
    kinds = sorted(d["kind"] for d in built[name])
    expected = ["ConfigMap", "Deployment", "Service"]
    expected += ["PersistentVolumeClaim"] if name == "local" else []
    expected += ["HorizontalPodAutoscaler", "PodDisruptionBudget"] if name in SCALED else []
    assert kinds == sorted(expected)
    for doc in built[name]:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_example_secret_is_valid_and_holds_no_value() -> None:
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    assert all(value == "" for value in secret["stringData"].values())  # no secret committed


def test_the_validator_really_rejects_a_broken_manifest(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    broken = copy.deepcopy(by_kind(built["local"])["Deployment"])
    broken["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_default_is_local_on_one_replica_with_a_persistent_volume(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    docs = by_kind(built["local"])
    deployment = docs["Deployment"]["spec"]
    assert config(docs)["CONNECTOR_METADATA"] == config(docs)["CONNECTOR_STORAGE"] == "local"
    assert deployment["replicas"] == 1
    assert deployment["strategy"] == {"type": "Recreate"}  # never two pods on one RWO volume
    assert "HorizontalPodAutoscaler" not in docs
    volumes = {v["name"]: v for v in deployment["template"]["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container(docs)["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container(docs)["env"]}
    # The local backend's folder is the mounted claim, and the claim is part of the build.
    assert mounts["data"] == env["CONNECTOR_DATA_DIR"] == "/data"
    claim = volumes["data"]["persistentVolumeClaim"]["claimName"]
    assert claim == docs["PersistentVolumeClaim"]["metadata"]["name"]
    assert docs["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteOnce"]


@pytest.mark.parametrize("name", SCALED)
def test_overlays_scale_with_an_hpa_and_keep_a_pod_during_disruptions(
    built: dict[str, list[dict[str, Any]]], name: str
) -> None:
    docs = by_kind(built[name])
    deployment, hpa = docs["Deployment"], docs["HorizontalPodAutoscaler"]["spec"]
    assert deployment["spec"]["replicas"] >= 2
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert docs["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    # No state in the pods: nothing but scratch is mounted.
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert all("emptyDir" in v for v in volumes)
    assert config(docs)["CONNECTOR_METADATA" if name == "zenodo" else "CONNECTOR_STORAGE"] == name


@pytest.mark.parametrize("name", BUILDS)
def test_the_config_map_is_one_the_connector_and_its_backend_accept(
    built: dict[str, list[dict[str, Any]]], name: str
) -> None:
    env = {"CONNECTOR_CONFIG": "", **config(by_kind(built[name])), **SECRETS[name]}
    settings = load_settings(env)
    # Building the backends reads and checks every setting they declare (no network).
    backends = [build_archive(settings), build_storage(settings)]
    assert any(b is not None for b in backends)


@pytest.mark.parametrize("name", BUILDS)
def test_names_follow_the_address_rds_callers_build(
    built: dict[str, list[dict[str, Any]]], name: str
) -> None:
    docs = by_kind(built[name])
    service = config(docs)["CONNECTOR_SERVICENAME"].removeprefix("port-")
    expected = f"layer1-port-{service}"
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        if kind in docs:
            assert docs[kind]["metadata"]["name"] == expected, kind
    env_from = container(docs)["envFrom"]
    assert env_from[0]["configMapRef"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    # Secrets are referenced, never contained; required where the backend needs one.
    assert env_from[1]["secretRef"]["name"] == f"{expected}-secrets"
    assert env_from[1]["secretRef"]["optional"] is (name == "local")
    assert all(d["kind"] != "Secret" for d in built[name])
    assert docs["Deployment"]["metadata"]["labels"]["app.kubernetes.io/instance"] == expected


@pytest.mark.parametrize("name", BUILDS)
def test_service_maps_80_to_the_image_port_and_selects_only_its_pods(
    built: dict[str, list[dict[str, Any]]], name: str
) -> None:
    docs = by_kind(built[name])
    (port,) = docs["Service"]["spec"]["ports"]
    named = {p["name"]: p["containerPort"] for p in container(docs)["ports"]}
    assert port["port"] == 80 and named[port["targetPort"]] == 8080
    assert "EXPOSE 8080" in (ROOT / "Dockerfile").read_text()
    pod_labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    selectors = [docs["Service"]["spec"]["selector"]]
    selectors.append(docs["Deployment"]["spec"]["selector"]["matchLabels"])
    if "PodDisruptionBudget" in docs:
        selectors.append(docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"])
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
        # Two deployments side by side (zenodo and webdav) never select each other's pods.
        assert "app.kubernetes.io/instance" in selector


def test_probes_use_paths_the_router_serves(
    built: dict[str, list[dict[str, Any]]], runtime: Any
) -> None:
    c = container(by_kind(built["local"]))
    paths = {c[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert paths == {"/healthz", "/metrics"}
    client = build_app(runtime).test_client()
    for path in paths:
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("name", BUILDS)
def test_security_context_is_restricted(built: dict[str, list[dict[str, Any]]], name: str) -> None:
    docs = by_kind(built[name])
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    c = container(docs)
    ctx = c["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/tmp", "/data"} <= mounts  # the only writable places
    assert {"requests", "limits"} <= c["resources"].keys()
    # The Dockerfile's user is the one the pod runs as.
    assert f"USER {pod['securityContext']['runAsUser']}" in (ROOT / "Dockerfile").read_text()
    text = (ROOT / "Dockerfile").read_text()
    graceful = int(text.split("GUNICORN_GRACEFUL_TIMEOUT=")[1].split()[0])
    assert pod["terminationGracePeriodSeconds"] > graceful


def test_the_image_is_set_once_in_the_base(built: dict[str, list[dict[str, Any]]]) -> None:
    images = {container(by_kind(docs))["image"] for docs in built.values()}
    assert images == {"ghcr.io/example/rds-connector:0.1.0"}
