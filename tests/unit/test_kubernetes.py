"""The Kubernetes manifests: valid for a current Kubernetes (offline schemas, strict), and
consistent with the image, the router and the RDS naming (``layer1-port-<name>``)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from common.config import load_settings
from local_router import build_app
from tests.support.servers import ROOT

K8S = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.37.0"  # the newest schemas kubernetes-validate 1.37 ships
MANIFESTS = ["deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml", "secret.example.yaml"]


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((K8S / name).read_text())


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return load("kustomization.yaml")


@pytest.fixture(scope="module")
def config_literals(kustomization: dict[str, Any]) -> dict[str, str]:
    (generator,) = kustomization["configMapGenerator"]
    return dict(item.split("=", 1) for item in generator["literals"])


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_valid_for_current_kubernetes_strictly(name: str) -> None:
    kubernetes_validate.validate(load(name), KUBERNETES_VERSION, strict=True)


def test_the_validator_really_rejects_a_broken_manifest() -> None:
    broken = copy.deepcopy(load("deployment.yaml"))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_applied_manifest_and_sets_image_and_backend(
    kustomization: dict[str, Any], config_literals: dict[str, str]
) -> None:
    assert sorted(kustomization["resources"]) == sorted(set(MANIFESTS) - {"secret.example.yaml"})
    for name in kustomization["resources"]:
        assert (K8S / name).is_file()
    container = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    assert [i["name"] for i in kustomization["images"]] == [container["image"]]
    assert {"CONNECTOR_METADATA", "CONNECTOR_STORAGE"} <= config_literals.keys()
    # The configuration the ConfigMap carries is one the connector accepts.
    settings = load_settings({"CONNECTOR_CONFIG": "", **config_literals})
    assert settings.servicename == config_literals["CONNECTOR_SERVICENAME"]


def test_names_follow_the_address_rds_callers_build(config_literals: dict[str, str]) -> None:
    name = config_literals["CONNECTOR_SERVICENAME"].removeprefix("port-")
    expected = f"layer1-port-{name}"
    for manifest in ("deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml"):
        assert load(manifest)["metadata"]["name"] == expected, manifest
    assert load("hpa.yaml")["spec"]["scaleTargetRef"]["name"] == expected


def test_service_maps_80_to_the_image_port_and_selects_the_pods() -> None:
    service, deployment = load("service.yaml"), load("deployment.yaml")
    (port,) = service["spec"]["ports"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port["port"] == 80 and named[port["targetPort"]] == 8080
    assert "EXPOSE 8080" in (ROOT / "Dockerfile").read_text()
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"],
        load("pdb.yaml")["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= pod_labels.items()


def test_probes_use_paths_the_router_serves(runtime) -> None:
    container = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    paths = {container[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe")}
    paths.add(container["livenessProbe"]["httpGet"]["path"])
    assert paths == {"/healthz", "/metrics"}
    client = build_app(runtime).test_client()
    for path in paths:
        assert client.get(path).status_code == 200, path


def test_security_context_is_restricted() -> None:
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ctx = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/data"} <= mounts  # the only writable places
    assert {"requests", "limits"} <= container["resources"].keys()
    # The Dockerfile's user is the one the pod runs as.
    assert f"USER {pod['securityContext']['runAsUser']}" in (ROOT / "Dockerfile").read_text()


def test_secrets_come_from_the_secret_under_rds_names() -> None:
    container = load("deployment.yaml")["spec"]["template"]["spec"]["containers"][0]
    refs = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
    secret = load("secret.example.yaml")
    assert refs == [secret["metadata"]["name"]]
    assert "ZENODO_OAUTH_CLIENT_SECRET" in secret["stringData"]
    assert all(value == "" for value in secret["stringData"].values())  # no secret committed


def test_pod_terminates_after_gunicorn_graceful_timeout() -> None:
    pod = load("deployment.yaml")["spec"]["template"]["spec"]
    text = (ROOT / "Dockerfile").read_text()
    graceful = int(text.split("GUNICORN_GRACEFUL_TIMEOUT=")[1].split()[0])
    assert pod["terminationGracePeriodSeconds"] > graceful


def test_manifests_parse_as_single_documents() -> None:
    for path in Path(K8S).glob("*.yaml"):
        docs = list(yaml.safe_load_all(path.read_text()))
        assert len(docs) == 1, path
