"""The inveniordm backend through the router process against the fake InvenioRDM: the sync
workflow as RDS Layer 2 drives it, real crates mapped exactly, publish, the community path,
and the Exporter's active sync out of the same deployment's local storage."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from common.rocrate.inveniordm import crate_to_inveniordm
from tests.support.callers import Exporter, MetadataService, Port, PortService
from tests.support.crates import crate
from tests.support.fake_inveniordm import FakeInvenioRDM
from tests.support.servers import RouterProcess, ServerThread, router_process
from tests.support.token_storage import TokenStorageDouble

USER = "alice@cloud.example.org"
TOKEN = "tok-inv-e2e-alice"
BOB = "tok-inv-e2e-bob"
SERVICE = "port-inveniordm"
CRATES = Path(__file__).resolve().parents[1] / "data" / "crates"
REAL = (
    "ro-crate-1.1-specification.json",
    "workflowhub-workflow-ro-crate-1.0-example.json",
    "rohub-real-world-example.json",
)
GOOD = crate(
    {
        "name": "Sync test",
        "description": "Files synced by RDS.",
        "datePublished": "2026-11",
        "license": "CC-BY-4.0",
        "keywords": "soil, moisture",
        "creator": [{"@id": "#alice"}, {"@id": "https://orcid.org/0000-0002-1825-0097"}],
    },
    {"@id": "#alice", "@type": "Person", "givenName": "Alice", "familyName": "Example"},
    {"@id": "https://orcid.org/0000-0002-1825-0097", "@type": "Person", "name": "Josiah Carberry"},
)
FILES = {
    "data/raw/measurements.csv": b"t,v\n" + b"1,2\n" * 50000,
    "Übersicht/naïve 文件 (1).txt": "grüße".encode(),
    "data%2Fraw/measurements.csv": b"not the same file",
    "big.bin": os.urandom(3 * 1024 * 1024 + 17),
    "data/empty.dat": b"",
}


@dataclass
class Env:
    fake: FakeInvenioRDM
    ts: TokenStorageDouble
    router: RouterProcess
    community: RouterProcess
    storage: RouterProcess  # a local fileStorage deployment, the Exporter's source

    @property
    def base(self) -> str:
        return self.router.url + "/metadata/project"


def uid(token: str = TOKEN) -> str:
    return f"{SERVICE}://{USER}:{token}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("inveniordm-e2e")
    fake = FakeInvenioRDM(tmp / "fake")
    fake.add_token(TOKEN, user="alice")
    fake.add_token(BOB, user="bob")
    fake.add_community("rds-lab", curators=["carol"])
    ts = TokenStorageDouble()
    servers = [ServerThread(app).start() for app in (fake.app, ts.app)]
    fake_url, ts_url = (s.url for s in servers)
    common = {
        "CONNECTOR_CONFIG": "",
        "CONNECTOR_METADATA": "inveniordm",
        "INVENIORDM_ADDRESS": fake_url,
        "CENTRAL_SERVICE_TOKEN_STORAGE": ts_url,
        "USE_CASE_SERVICE_PORT_SERVICE": ts_url,
    }
    direct = {**common, "CONNECTOR_DATA_DIR": str(tmp / "a"), "CONNECTOR_STORAGE": "none"}
    local = {
        "CONNECTOR_CONFIG": "",
        "CONNECTOR_DATA_DIR": str(tmp / "c"),
        "CONNECTOR_METADATA": "none",
        "CONNECTOR_STORAGE": "local",
    }
    review = {
        **common,
        "CONNECTOR_DATA_DIR": str(tmp / "b"),
        "CONNECTOR_STORAGE": "none",
        "CONNECTOR_SERVICENAME": "port-inveniordm-lab",
        "INVENIORDM_COMMUNITY": "rds-lab",
    }
    try:
        with (
            router_process(direct) as a,
            router_process(review) as b,
            router_process(local) as c,
        ):
            yield Env(fake, ts, a, b, c)
    finally:
        for server in servers:
            server.stop()
        fake.close()


def upload(base: str, pid: str, name: str, data: bytes, user_id: str = "") -> requests.Response:
    return requests.post(
        f"{base}/{pid}/files",
        data={"userId": user_id or uid(), "filename": name, "username": USER},
        files={"file": (name.rsplit("/", 1)[-1], data)},
        timeout=60,
    )


def test_registered_as_a_personal_access_token_service(env: Env) -> None:
    entry = env.ts.services[SERVICE]["data"]
    assert entry["credentials"] == {"userId": False, "password": True}
    assert env.ts.services["port-inveniordm-lab"]["data"]["implements"] == ["metadata"]


def test_the_whole_sync_workflow(env: Env) -> None:
    base = env.base
    pid = requests.post(base, json={"userId": uid()}, timeout=30).json()["projectId"]
    patched = requests.patch(f"{base}/{pid}", json={"userId": uid(), "metadata": GOOD}, timeout=30)
    assert patched.status_code == 200, patched.text
    for name, data in FILES.items():
        resp = upload(base, pid, name, data)
        assert resp.status_code == 200, resp.text
    env.ts.tokens[(USER, SERVICE)] = TOKEN  # the bare form: the token is looked up
    listed = requests.get(f"{base}/{pid}/files", json={"userId": USER}, timeout=30)
    assert {f["id"]: f["checksum"] for f in listed.json()} == {
        n: "md5:" + hashlib.md5(d).hexdigest() for n, d in FILES.items()
    }
    for name, data in FILES.items():
        assert env.fake.file_bytes(pid, name) == data
    one = requests.get(f"{base}/{pid}/files/data/raw/measurements.csv", json={"userId": uid()})
    assert one.json()["size"] == len(FILES["data/raw/measurements.csv"])
    renamed = requests.patch(
        f"{base}/{pid}/files/Übersicht/naïve 文件 (1).txt",
        json={"userId": uid(), "filename": "b/eins.txt"},
        timeout=30,
    )
    assert renamed.status_code == 200 and renamed.json()["id"] == "b/eins.txt", renamed.text
    assert env.fake.file_bytes(pid, "b/eins.txt") == FILES["Übersicht/naïve 文件 (1).txt"]
    gone = requests.delete(f"{base}/{pid}/files/data/empty.dat", json={"userId": uid()})
    assert gone.status_code in (200, 204)

    published = requests.put(f"{base}/{pid}", json={"userId": uid()}, timeout=30)
    assert published.status_code == 200, published.text
    assert published.json() == {"DOI": f"10.5072/inveniordm.{pid}"}
    record = env.fake.entries[pid].record or {}
    assert record["metadata"]["title"] == "Sync test"
    assert record["metadata"]["publication_date"] == "2026-11"
    assert record["metadata"]["rights"] == [{"id": "cc-by-4.0"}]
    assert [c["person_or_org"]["family_name"] for c in record["metadata"]["creators"]] == [
        "Example",
        "Carberry",
    ]
    late = upload(base, pid, "late.txt", b"late")
    assert late.status_code == 409 and late.json()["success"] is False
    assert requests.delete(f"{base}/{pid}", json={"userId": uid()}).status_code == 409

    other = requests.post(base, json={"userId": uid()}, timeout=30).json()["projectId"]
    upload(base, other, "a/one.txt", b"1").raise_for_status()
    assert requests.delete(f"{base}/{other}/files", json={"userId": uid()}).status_code in (
        200,
        204,
    )
    assert env.fake.entries[other].draft.files == {}  # type: ignore[union-attr]
    assert requests.delete(f"{base}/{other}", json={"userId": uid()}).status_code == 204
    assert other not in env.fake.entries

    log = env.router.log()
    assert TOKEN not in log
    puts = [r for r in env.fake.requests if r["method"] == "PUT" and r["path"].endswith("/content")]
    assert puts and all(r["content_length"] is not None and not r["chunked"] for r in puts)


@pytest.mark.parametrize("name", REAL)
def test_real_crates_arrive_mapped_exactly(env: Env, name: str) -> None:
    document = json.loads((CRATES / name).read_text(encoding="utf-8"))
    pid = requests.post(env.base, json={"userId": uid()}, timeout=30).json()["projectId"]
    resp = requests.patch(f"{env.base}/{pid}", json={"userId": uid(), "metadata": document})
    assert resp.status_code == 200, resp.text
    stored = (env.fake.entries[pid].draft.data or {})["metadata"]  # type: ignore[union-attr]
    assert stored == crate_to_inveniordm(document)  # the exact values: unit-tested per crate
    assert stored["creators"]


def test_a_crate_without_creator_is_refused_at_publish_naming_creator(env: Env) -> None:
    pid = requests.post(env.base, json={"userId": uid()}, timeout=30).json()["projectId"]
    nobody = crate({"name": "Nobody's data", "datePublished": "2026", "license": "MIT"})
    requests.patch(f"{env.base}/{pid}", json={"userId": uid(), "metadata": nobody})
    upload(env.base, pid, "a.csv", b"a").raise_for_status()
    refused = requests.put(f"{env.base}/{pid}", json={"userId": uid()}, timeout=30)
    assert refused.status_code == 400
    assert refused.json()["field"] == "creator" and refused.json()["success"] is False


def test_another_users_draft_is_a_404_and_a_bad_token_a_401(env: Env) -> None:
    pid = requests.post(env.base, json={"userId": uid()}, timeout=30).json()["projectId"]
    for route in ("", "/files"):
        other = requests.get(f"{env.base}/{pid}{route}", json={"userId": uid(BOB)}, timeout=30)
        assert other.status_code == 404, other.text
    bad = requests.get(f"{env.base}/{pid}", json={"userId": uid("tok-expired")}, timeout=30)
    assert bad.status_code == 401 and bad.json()["field"] == "userId"
    assert "tok-expired" not in bad.text


def test_the_community_path_submits_a_review(env: Env) -> None:
    base = env.community.url + "/metadata/project"
    lab = f"port-inveniordm-lab://{USER}:{TOKEN}"
    pid = requests.post(base, json={"userId": lab}, timeout=30).json()["projectId"]
    requests.patch(f"{base}/{pid}", json={"userId": lab, "metadata": GOOD}).raise_for_status()
    upload(base, pid, "a.csv", b"a", lab).raise_for_status()
    answer = requests.put(f"{base}/{pid}", json={"userId": lab}, timeout=30)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["DOI"] is None and body["submitted"] is True and body["community"] == "rds-lab"
    env.fake.accept_review(pid)
    again = requests.put(f"{base}/{pid}", json={"userId": lab}, timeout=30).json()
    assert again == {"DOI": f"10.5072/inveniordm.{pid}"}


def test_the_exporters_active_sync_archives_every_file(env: Env) -> None:
    port = Port(env.router.url, SERVICE, TOKEN)
    storage = Port(env.storage.url, "port-local", "unused")
    folder = "Forschung/Boden 2026"
    files = {**{k: v for k, v in FILES.items() if k != "data%2Fraw/measurements.csv"}}
    files["ro-crate-metadata.json"] = json.dumps(GOOD).encode()
    for name, data in files.items():
        stored = requests.post(
            env.storage.url + "/storage/file",
            data={"userId": storage.user_id(USER), "filepath": f"{folder}/{name}"},
            files={"file": (name.rsplit("/", 1)[-1], data)},
            timeout=60,
        )
        assert stored.status_code == 200, stored.text
    pid = PortService(USER).create_project(port)
    imported = MetadataService(USER).import_crate(storage, folder, port, pid)
    assert imported is not None
    report = Exporter(USER).active_sync(storage, folder, port, pid)
    assert report.success, report.messages
    assert sorted(report.files) == sorted(files)
    for name, data in files.items():
        assert env.fake.file_bytes(pid, name) == data
    assert MetadataService(USER).publish(port, pid) == f"10.5072/inveniordm.{pid}"
