"""The Zenodo backend against the fake Zenodo on loopback: the fake's own rules, the backend
in-process for faults, and the router process through the whole sync workflow as RDS
Layer 2 drives it."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import requests

from common.backends.zenodo import ZenodoArchive, to_key
from common.errors import BadRequest, Forbidden, Unauthorized
from common.identity import Identity
from common.runtime import USER_AGENT
from common.streams import Upload
from tests.support.crates import crate
from tests.support.fake_zenodo import WRITE, FakeZenodo
from tests.support.servers import ServerThread, router_process
from tests.support.token_storage import TokenStorageDouble

USER = "alice@cloud.example.org"
TOKEN = "tok-zen-1"
CRATE = crate(
    {
        "name": "Sync test",
        "description": "Files synced by RDS.",
        "datePublished": "2026-11-27",
        "license": "CC-BY-4.0",
        "keywords": "soil, moisture",
        "creator": [{"@id": "#alice"}, {"@id": "https://orcid.org/0000-0002-1825-0097"}],
    },
    {"@id": "#alice", "@type": "Person", "givenName": "Alice", "familyName": "Example"},
    {
        "@id": "https://orcid.org/0000-0002-1825-0097",
        "@type": "Person",
        "name": "Josiah Carberry",
    },
)


@pytest.fixture
def fake(tmp_path):
    zen = FakeZenodo(tmp_path / "zenodo")
    zen.add_token(TOKEN)
    server = ServerThread(zen.app).start()
    zen.url = server.url
    yield zen
    server.stop()
    zen.close()


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_fake_enforces_what_zenodo_enforces(fake) -> None:
    deps = f"{fake.url}/api/deposit/depositions"
    assert requests.post(deps, json={}, timeout=10).status_code == 401
    assert requests.post(deps, data="{}", headers=_auth(), timeout=10).status_code == 415
    created = requests.post(deps, json={}, headers=_auth(), timeout=10)
    assert created.status_code == 201
    dep = created.json()
    bucket = dep["links"]["bucket"]
    chunked = requests.put(f"{bucket}/a", data=iter([b"x"]), headers=_auth(), timeout=10)
    assert chunked.status_code == 400 and "Content-Length" in chunked.json()["message"]
    multipart = requests.put(f"{bucket}/a", files={"f": b"x"}, headers=_auth(), timeout=10)
    assert multipart.status_code == 422
    assert requests.put(f"{bucket}/a", data=b"", headers=_auth(), timeout=10).status_code == 400
    put = requests.put(f"{bucket}/a", data=b"abc", headers=_auth(), timeout=10)
    assert put.status_code == 201
    assert put.json()["checksum"] == "md5:" + hashlib.md5(b"abc").hexdigest()
    publish = requests.post(f"{deps}/{dep['id']}/actions/publish", headers=_auth(), timeout=10)
    assert publish.status_code == 400
    fields = {e["field"] for e in publish.json()["errors"]}
    assert {"metadata.creators", "metadata.upload_type", "metadata.title"} <= fields
    for i in range(99):
        assert requests.put(f"{bucket}/f{i}", data=b"x", headers=_auth(), timeout=10).ok
    assert requests.put(f"{bucket}/over", data=b"x", headers=_auth(), timeout=10).status_code == 400
    fake.inject(429, path="/api/deposit", headers={"Retry-After": "7"})
    limited = requests.get(deps, headers=_auth(), timeout=10)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    fake.add_token("weak", (WRITE,))
    weak = requests.post(f"{deps}/{dep['id']}/actions/publish", headers=_auth("weak"), timeout=10)
    assert weak.status_code == 403


def test_backend_against_the_fake_faults(fake) -> None:
    archive = ZenodoArchive(fake.url, "cid", "cs", "https://rds.example/cb", sleep=lambda s: None)
    who = Identity(USER, TOKEN)
    pid = archive.create_project(who, None)["projectId"]
    # a multipart size hint that lies (stream longer) stops the upload; nothing is stored
    with pytest.raises(BadRequest):
        archive.store_file(who, pid, Upload("x.bin", iter([b"abcd", b"efgh"]), size_hint=5))
    with pytest.raises(BadRequest):  # and one that ends short of its hint
        archive.store_file(who, pid, Upload("y.bin", iter([b"abc"]), size_hint=5))
    assert archive.list_files(who, pid) == []
    # InvenioRDM-shaped validation errors name the RO-Crate property too
    fake.error_shape = "invenio"
    archive.update_project(who, pid, CRATE)
    archive.store_file(who, pid, Upload("a.txt", iter([b"a"]), size=1))
    fake.inject(
        400,
        method="POST",
        path="/actions/publish",
        body={"errors": [{"field": "metadata.creators.0.name", "messages": ["Missing data."]}]},
    )
    with pytest.raises(BadRequest) as err:
        archive.publish_project(who, pid)
    assert err.value.field == "creator"
    # a record without a creator is refused by the connector itself, before Zenodo
    creators = fake.depositions[int(pid)].metadata["creators"]
    fake.depositions[int(pid)].metadata["creators"] = [{"affiliation": "x"}]
    with pytest.raises(BadRequest) as own:
        archive.publish_project(who, pid)
    assert own.value.field == "creator" and not fake.depositions[int(pid)].submitted
    fake.depositions[int(pid)].metadata["creators"] = creators
    # 429 is waited out, 503 on a read is retried, 401/403 become clear problems
    fake.inject(429, path=f"/depositions/{pid}$", headers={"Retry-After": "0"})
    fake.inject(503, path=f"/depositions/{pid}$")
    assert archive.get_project(who, pid)
    with pytest.raises(Unauthorized):
        archive.get_project(Identity(USER, "revoked"), pid)
    fake.add_token("weak", (WRITE,), user=TOKEN)
    with pytest.raises(Forbidden) as forbidden:
        archive.publish_project(Identity(USER, "weak"), pid)
    assert "deposit:actions" in forbidden.value.detail


def test_sync_workflow_through_the_router(fake, tmp_path) -> None:
    ts = TokenStorageDouble()
    ts_server = ServerThread(ts.app).start()
    env = {
        "CONNECTOR_CONFIG": "",
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "CONNECTOR_METADATA": "zenodo",
        "CONNECTOR_STORAGE": "none",
        "ZENODO_ADDRESS": fake.url,
        "ZENODO_OAUTH_CLIENT_ID": "cid",
        "ZENODO_OAUTH_CLIENT_SECRET": "csecret-e2e",
        "RDS_OAUTH_REDIRECT_URI": "https://rds.example/redirect",
        "CENTRAL_SERVICE_TOKEN_STORAGE": ts_server.url,
        "USE_CASE_SERVICE_PORT_SERVICE": ts_server.url,
    }
    try:
        with router_process(env) as router:
            assert router.get("/healthz").status_code == 200
            assert ts.services["port-zenodo"]["data"]["refresh_url"] == f"{fake.url}/oauth/token"
            base = router.url + "/metadata/project"
            uid = f"port-zenodo://{USER}:{TOKEN}"

            created = requests.post(base, json={"userId": uid}, timeout=30)
            assert created.status_code == 200, created.text
            pid = created.json()["projectId"]
            patched = requests.patch(
                f"{base}/{pid}", json={"userId": uid, "metadata": CRATE}, timeout=30
            )
            assert patched.status_code == 200, patched.text

            files = {
                "data/raw/measurements.csv": b"t,v\n" + b"1,2\n" * 50000,
                "Übersicht/naïve 文件 (1).txt": "grüße".encode(),
                "data%2Fraw/measurements.csv": b"not the same file",
                "big.bin": os.urandom(3 * 1024 * 1024 + 17),
                "ro-crate-metadata.json": b"{}",
            }
            for name, data in files.items():
                resp = requests.post(
                    f"{base}/{pid}/files",
                    data={"userId": uid, "filename": name, "username": USER},
                    files={"file": (name.rsplit("/", 1)[-1], data)},
                    timeout=60,
                )
                assert resp.status_code == 200, resp.text
            empty = requests.post(
                f"{base}/{pid}/files",
                data={"userId": uid, "filename": "data/empty.dat", "username": USER},
                files={"file": ("empty.dat", b"")},
                timeout=60,
            )
            assert empty.status_code == 422
            assert empty.headers["Content-Type"] == "application/problem+json"
            assert "data/empty.dat" in empty.json()["detail"]

            fake.inject(429, path=f"/depositions/{pid}$", headers={"Retry-After": "1"})
            ts.tokens[(USER, "port-zenodo")] = TOKEN  # bare-form userId: token looked up
            listed = requests.get(f"{base}/{pid}/files", json={"userId": USER}, timeout=30)
            assert listed.status_code == 200, listed.text
            assert {f["id"]: f["checksum"] for f in listed.json()} == {
                n: "md5:" + hashlib.md5(d).hexdigest() for n, d in files.items()
            }
            one = requests.get(
                f"{base}/{pid}/files/data/raw/measurements.csv", json={"userId": uid}, timeout=30
            )
            assert one.json()["size"] == len(files["data/raw/measurements.csv"])

            published = requests.put(f"{base}/{pid}", json={"userId": uid}, timeout=30)
            assert published.status_code == 200, published.text
            assert published.json() == {"DOI": f"10.5072/zenodo.{pid}"}

            dep = fake.depositions[int(pid)]
            for name, data in files.items():
                if name != "ro-crate-metadata.json":
                    assert fake.file_bytes(int(pid), to_key(name)) == data
            # the uploaded "{}" is no crate: the record's crate is rebuilt from its metadata,
            # with a File entity (size, format, MD5) per deposited key
            record_crate = json.loads(fake.file_bytes(int(pid), "ro-crate-metadata.json"))
            parts = {e["name"]: e for e in record_crate["@graph"] if e.get("@type") == "File"}
            assert {n: int(e["contentSize"]) for n, e in parts.items()} == {
                n: len(d) for n, d in files.items() if n != "ro-crate-metadata.json"
            }
            assert dep.metadata["title"] == "Sync test"
            assert dep.metadata["license"] == "cc-by-4.0"
            assert [c["name"] for c in dep.metadata["creators"]] == [
                "Example, Alice",
                "Carberry, Josiah",
            ]
            assert dep.metadata["creators"][1]["orcid"] == "0000-0002-1825-0097"
            assert dep.metadata["keywords"] == ["soil", "moisture"]

            gone = requests.delete(f"{base}/{pid}", json={"userId": uid}, timeout=30)
            assert gone.status_code == 409 and "published" in gone.json()["detail"]
            other = requests.post(base, json={"userId": uid}, timeout=30).json()["projectId"]
            for name in ("a/one.txt", "a/two.txt", "three.txt"):
                requests.post(
                    f"{base}/{other}/files",
                    data={"userId": uid, "filename": name, "username": USER},
                    files={"file": ("x", name.encode())},
                    timeout=30,
                ).raise_for_status()
            renamed = requests.patch(
                f"{base}/{other}/files/a/one.txt",
                json={"userId": uid, "filename": "b/eins.txt"},
                timeout=30,
            )
            assert renamed.status_code == 200 and renamed.json()["id"] == "b/eins.txt", renamed.text
            assert fake.file_bytes(int(other), "b%2Feins.txt") == b"a/one.txt"
            one_gone = requests.delete(
                f"{base}/{other}/files/a/two.txt", json={"userId": uid}, timeout=30
            )
            assert one_gone.status_code in (200, 204)
            left = requests.get(f"{base}/{other}/files", json={"userId": uid}, timeout=30).json()
            assert [f["id"] for f in left] == ["b/eins.txt", "three.txt"]
            all_gone = requests.delete(f"{base}/{other}/files", json={"userId": uid}, timeout=30)
            assert all_gone.status_code in (200, 204)
            assert fake.depositions[int(other)].files == {}
            assert (
                requests.delete(f"{base}/{other}", json={"userId": uid}, timeout=30).status_code
                == 204
            )
            assert int(other) not in fake.depositions

            assert all(r["user_agent"] == USER_AGENT for r in fake.requests)
            puts = [r for r in fake.requests if r["method"] == "PUT" and "/api/files/" in r["path"]]
            assert puts and all(r["content_length"] and not r["chunked"] for r in puts)
            log = router.log()
            assert TOKEN not in log and "csecret-e2e" not in log
    finally:
        ts_server.stop()
