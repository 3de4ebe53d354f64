"""Outbound calls go only where they should: a forged passive ``service`` never leaves the
connector, an allow-list is enforced, and a storage's redirect is never followed."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, Response, request

from local_router import build_app
from tests.conftest import uid
from tests.support.servers import ServerThread
from tests.support.token_storage import TokenStorageDouble


def sink() -> Flask:
    """Answers everything with 200 and records it: any request here is a leak."""
    app = Flask("sink")
    app.config["seen"] = []

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT"])
    def record(path: str) -> Any:
        app.config["seen"].append((request.method, request.path))
        return {"files": ["loot.txt"]}

    return app


@pytest.fixture
def leak() -> Any:
    server = ServerThread(sink()).start()
    yield server
    server.stop()


FORGED = [
    "port-x.kube-system.svc.cluster.local",
    "port-metadata.google.internal",
    "port-x\n",
    "port-x/../admin",
    "port-x:80",
    "port-x@127.0.0.1",
    "port-" + "a" * 57,  # layer1-<name> would be longer than one DNS label (63)
    "port-x-",
    "PORT-X",
]


@pytest.mark.parametrize("service", FORGED)
def test_a_forged_service_name_sends_no_request_anywhere(make_runtime, leak, service) -> None:
    double = TokenStorageDouble()
    ts = ServerThread(double.app).start()
    try:
        runtime = make_runtime(
            PASSIVE_STORAGE_URL_TEMPLATE=leak.url + "/{service}",
            USE_CASE_SERVICE_PORT_SERVICE=ts.url,
        )
        client = build_app(runtime).test_client()
        pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
        form = {
            "userId": uid(),
            "folder": "/r",
            "service": service,
            "username": "alice@cloud.example.org",
        }
        resp = client.post(f"/metadata/project/{pid}/files", data=form)
        assert resp.status_code == 400 and resp.json["field"] == "service"
        assert leak.app.config["seen"] == []
        assert double.requests == []  # no token was looked up for it either
    finally:
        ts.stop()


def test_only_allowed_services_are_asked(make_runtime, leak) -> None:
    runtime = make_runtime(
        PASSIVE_STORAGE_URL_TEMPLATE=leak.url + "/{service}",
        PASSIVE_ALLOWED_SERVICES="port-owncloud-a, port-owncloud-b",
    )
    client = build_app(runtime).test_client()
    pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
    form = {"userId": uid(), "folder": "/r", "username": "alice@cloud.example.org"}
    refused = client.post(f"/metadata/project/{pid}/files", data={**form, "service": "port-other"})
    assert refused.status_code == 403 and refused.json["field"] == "service"
    assert leak.app.config["seen"] == []
    allowed = client.post(
        f"/metadata/project/{pid}/files", data={**form, "service": "port-owncloud-b"}
    )
    assert allowed.status_code == 200, allowed.json
    assert leak.app.config["seen"][0] == ("GET", "/port-owncloud-b/storage/folder")


def test_a_storage_redirect_is_not_followed(make_runtime, leak) -> None:
    storage = Flask("redirecting")

    @storage.get("/<service>/storage/<kind>")
    def elsewhere(service: str, kind: str) -> Response:
        return Response(status=302, headers={"Location": leak.url + "/stolen"})

    server = ServerThread(storage).start()
    try:
        runtime = make_runtime(PASSIVE_STORAGE_URL_TEMPLATE=server.url + "/{service}")
        client = build_app(runtime).test_client()
        pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
        form = {"userId": uid(), "folder": "/r", "service": "port-redirects"}
        resp = client.post(f"/metadata/project/{pid}/files", data=form)
        assert resp.status_code >= 400
        assert leak.app.config["seen"] == []
    finally:
        server.stop()
