"""End to end: ``python local_router.py`` as a real process, a Token Storage double on
loopback, and the sync workflow driven the way RDS Layer 2 drives it (requests with JSON
bodies on GET, multipart with the fields before the file part)."""

from __future__ import annotations

import hashlib
import os
import time

import requests
from RDS import Util

from tests.support.servers import ServerThread, free_port, router_process
from tests.support.token_storage import TokenStorageDouble

USER = "alice@cloud.example.org"
CRATE = {
    "@context": "https://w3id.org/ro/crate/1.1/context",
    "@graph": [
        {
            "@id": "ro-crate-metadata.json",
            "@type": "CreativeWork",
            "about": {"@id": "./"},
            "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
        },
        {
            "@id": "./",
            "@type": "Dataset",
            "name": "Sync test",
            "datePublished": "2026-11-27",
            "creator": [{"@id": "#alice"}],
        },
        {"@id": "#alice", "@type": "Person", "name": "Alice Example"},
    ],
}


def test_sync_workflow_like_layer2(tmp_path) -> None:
    ts = TokenStorageDouble()
    server = ServerThread(ts.app).start()
    env = {
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "CENTRAL_SERVICE_TOKEN_STORAGE": server.url,
        "USE_CASE_SERVICE_PORT_SERVICE": server.url,
        "CONNECTOR_CONFIG": "",
    }
    try:
        with router_process(env) as router:
            health = router.get("/healthz")
            first_answer = time.time()
            assert health.status_code == 200
            registered = ts.registered_at("port-local")
            assert registered is not None and registered < first_answer
            assert Util.getServiceObject(ts.services["port-local"]).implements == [
                "fileStorage",
                "metadata",
            ]

            base = router.url + "/metadata/project"
            user_id = f"port-local://{USER}:tok-1"
            created = requests.post(base, json={"userId": user_id}, timeout=30)
            assert created.status_code == 200
            pid = created.json()["projectId"]
            patched = requests.patch(
                f"{base}/{pid}", json={"userId": user_id, "metadata": CRATE}, timeout=30
            )
            assert patched.json() == CRATE

            files = {
                "data/raw/measurements.csv": b"t,v\n" + b"1,2\n" * 50000,
                "data/empty.dat": b"",
                "Übersicht/naïve 文件 (1).txt": "grüße".encode(),
                "big.bin": os.urandom(3 * 1024 * 1024 + 17),
            }
            for name, data in files.items():
                resp = requests.post(
                    f"{base}/{pid}/files",
                    data={"userId": user_id, "filename": name, "username": USER},
                    files={"file": (name.rsplit("/", 1)[-1], data)},
                    timeout=60,
                )
                assert resp.status_code == 200, resp.text
            # a bare-form userId: the token comes from the Port service (here: the double)
            ts.tokens[(USER, "port-local")] = "tok-1"
            listed = requests.get(f"{base}/{pid}/files", json={"userId": USER}, timeout=30).json()
            assert {f["filename"]: f["checksum"] for f in listed} == {
                n: "md5:" + hashlib.md5(d).hexdigest() for n, d in files.items()
            }
            published = requests.put(f"{base}/{pid}", json={"userId": user_id}, timeout=30)
            assert published.status_code == 200
            assert set(published.json()) == {"DOI"}

            folder = next((tmp_path / "data" / "projects").glob("u-*")) / pid
            for name, data in files.items():
                assert (folder / name).read_bytes() == data
            metrics = router.get("/metrics").text
            assert (
                'rds_connector_requests_total{function="files_upload",method="POST",status="200"} 4.0'
                in metrics
            )
            assert "tok-1" not in router.log()
    finally:
        server.stop()


def test_registers_once_the_token_storage_comes_up(tmp_path) -> None:
    ts = TokenStorageDouble()
    server = ServerThread(ts.app, port=free_port()).start(delay=2.0)
    env = {
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "CENTRAL_SERVICE_TOKEN_STORAGE": server.url,
        "REGISTRATION_DEADLINE": "30",
        "REGISTRATION_MAX_DELAY": "0.5",
        "CONNECTOR_CONFIG": "",
    }
    try:
        with router_process(env) as router:
            assert router.get("/healthz").status_code == 200
            assert "port-local" in ts.services
            assert "registry.retry" in router.log()
    finally:
        server.stop()


def test_exits_non_zero_when_the_token_storage_stays_down(tmp_path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "CENTRAL_SERVICE_TOKEN_STORAGE": dead,
        "REGISTRATION_DEADLINE": "2",
        "REGISTRATION_MAX_DELAY": "0.5",
        "CONNECTOR_CONFIG": "",
    }
    with router_process(env, wait=False) as router:
        code = router.proc.wait(timeout=30)
        assert code != 0
        assert "init failed" in router.log() and "REGISTRATION_DEADLINE=2s" in router.log()


def test_a_changed_entry_is_replaced_at_start(tmp_path) -> None:
    ts = TokenStorageDouble()
    server = ServerThread(ts.app).start()
    env = {
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "CENTRAL_SERVICE_TOKEN_STORAGE": server.url,
        "CONNECTOR_CONFIG": "",
    }
    try:
        with router_process({**env, "CONNECTOR_DISPLAYNAME": "Old"}) as router:
            assert router.get("/healthz").status_code == 200
        assert ts.services["port-local"]["data"]["displayName"] == "Old"
        with router_process({**env, "CONNECTOR_DISPLAYNAME": "New"}) as router:
            assert router.get("/healthz").status_code == 200
        assert ts.services["port-local"]["data"]["displayName"] == "New"
        assert [m for _, m, p in ts.requests if p == "/service/port-local"] == ["GET", "DELETE"]
    finally:
        server.stop()


def test_bad_configuration_stops_with_a_message_naming_it(tmp_path) -> None:
    env = {
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "CONNECTOR_METADATA": "nope",
        "CONNECTOR_CONFIG": "",
    }
    with router_process(env, wait=False) as router:
        assert router.proc.wait(timeout=30) == 2
        assert "CONNECTOR_METADATA" in router.log()
