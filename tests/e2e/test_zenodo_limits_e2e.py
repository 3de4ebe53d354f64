"""Issue 13's acceptance through the router process: Zenodo's rate limit (scaled down on a
real short window) lived with, one request per file, the record's crate, no invented
metadata, lost create answers and concurrent publishes."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from tests.support.crates import crate
from tests.support.fake_zenodo import serving
from tests.support.servers import ServerThread, router_process
from tests.support.token_storage import TokenStorageDouble

USER = "alice@cloud.example.org"
TOKEN = "tok-zen-limits"
UID = f"port-zenodo://{USER}:{TOKEN}"
LIMIT, WINDOW = 20, 1.0  # Zenodo's 100 per 60 s, scaled down to a window a test can wait
CRATE = crate(
    {
        "name": "Rate test",
        "description": "Many small files.",
        "datePublished": "2026-11-27",
        "license": "CC-BY-4.0",
        "creator": [{"@id": "#alice"}],
    },
    {"@id": "#alice", "@type": "Person", "givenName": "Alice", "familyName": "Example"},
)


@pytest.fixture
def fake(tmp_path):
    with serving(tmp_path / "zenodo", TOKEN) as zen:
        yield zen


@pytest.fixture
def router(fake, tmp_path):
    ts = ServerThread(TokenStorageDouble().app).start()
    env = {
        "CONNECTOR_CONFIG": "",
        "CONNECTOR_DATA_DIR": str(tmp_path / "data"),
        "CONNECTOR_METADATA": "zenodo",
        "CONNECTOR_STORAGE": "none",
        "ZENODO_ADDRESS": fake.url,
        "ZENODO_OAUTH_CLIENT_ID": "cid",
        "ZENODO_OAUTH_CLIENT_SECRET": "csecret-limits",
        "RDS_OAUTH_REDIRECT_URI": "https://rds.example/redirect",
        "CENTRAL_SERVICE_TOKEN_STORAGE": ts.url,
        "USE_CASE_SERVICE_PORT_SERVICE": ts.url,
    }
    try:
        with router_process(env) as proc:
            proc.base = proc.url + "/metadata/project"
            yield proc
    finally:
        ts.stop()


def _upload(router, pid: str, name: str, data: bytes) -> requests.Response:
    return requests.post(
        f"{router.base}/{pid}/files",
        data={"userId": UID, "filename": name, "username": USER},
        files={"file": (name.rsplit("/", 1)[-1], data)},
        timeout=60,
    )


def _create(router, **headers: str) -> requests.Response:
    return requests.post(router.base, json={"userId": UID}, headers=headers, timeout=60)


def test_200_files_under_the_rate_limit_all_arrive_one_request_each(fake, router) -> None:
    fake.rate_limit, fake.rate_window = LIMIT, WINDOW
    pids = [_create(router).json()["projectId"] for _ in range(4)]
    for pid in pids:
        patched = requests.patch(
            f"{router.base}/{pid}", json={"userId": UID, "metadata": CRATE}, timeout=60
        )
        assert patched.status_code == 200, patched.text
    before = len(fake.requests)
    answers = [
        _upload(router, pids[i // 50], f"d{i % 7}/f{i}.txt", f"file {i}".encode())
        for i in range(200)
    ]
    during = fake.requests[before:]
    assert [a.status_code for a in answers] == [200] * 200, {a.status_code for a in answers}
    assert fake.refused_429 == 0  # paced before the limit, not refused by it
    assert len(during) / 200 <= 1.2, [(r["method"], r["path"]) for r in during[:8]]
    for i in range(200):
        dep = fake.depositions[int(pids[i // 50])]
        assert fake.file_bytes(dep.id, f"d{i % 7}%2Ff{i}.txt") == f"file {i}".encode()

    published = requests.put(f"{router.base}/{pids[0]}", json={"userId": UID}, timeout=60)
    assert published.status_code == 200, published.text
    record = json.loads(fake.file_bytes(int(pids[0]), "ro-crate-metadata.json"))
    parts = {e["@id"]: e for e in record["@graph"] if e.get("@type") == "File"}
    assert {k: int(e["contentSize"]) for k, e in parts.items()} == {
        f"d{i % 7}/f{i}.txt": len(f"file {i}") for i in range(50)
    }
    assert all(e["encodingFormat"] == "text/plain" for e in parts.values())
    assert all(len(e["identifier"]["value"]) == 32 for e in parts.values())
    root = next(e for e in record["@graph"] if e["@id"] == "./")
    assert root["name"] == "Rate test" and len(root["hasPart"]) == 50  # the crate as given
    assert TOKEN not in router.log()


def test_a_crate_without_creator_is_refused_at_publish(fake, router) -> None:
    pid = _create(router).json()["projectId"]
    nobody = crate({"name": "Nobody's", "license": "CC-BY-4.0"})
    assert (
        requests.patch(
            f"{router.base}/{pid}", json={"userId": UID, "metadata": nobody}, timeout=60
        ).status_code
        == 200
    )  # a draft may stay partial
    assert _upload(router, pid, "a.txt", b"a").status_code == 200
    refused = requests.put(f"{router.base}/{pid}", json={"userId": UID}, timeout=60)
    assert refused.status_code == 400 and refused.json()["field"] == "creator"
    dep = fake.depositions[int(pid)]
    assert not dep.submitted and "creators" not in dep.metadata  # no "Unknown" ever sent
    unlicensed = crate({"name": "x", "creator": {"@id": "#a"}}, {"@id": "#a", "name": "A B"})
    requests.patch(f"{router.base}/{pid}", json={"userId": UID, "metadata": unlicensed}, timeout=60)
    refused = requests.put(f"{router.base}/{pid}", json={"userId": UID}, timeout=60)
    assert refused.status_code == 400 and refused.json()["field"] == "license"


def test_a_lost_create_answer_and_a_retried_create_leave_one_draft(fake, router) -> None:
    fake.lose_answer(method="POST", path=r"/depositions$")
    created = _create(router)
    assert created.status_code == 200, created.text
    assert list(fake.depositions) == [int(created.json()["projectId"])]

    first = _create(router, **{"Idempotency-Key": "sync-42"})
    again = _create(router, **{"Idempotency-Key": "sync-42"})
    assert first.status_code == again.status_code == 200
    assert first.json()["projectId"] == again.json()["projectId"]
    assert len(fake.depositions) == 2
    other = _create(router, **{"Idempotency-Key": "sync-43"})
    assert other.json()["projectId"] != first.json()["projectId"]


def test_concurrent_publishes_all_answer_the_doi(fake, router) -> None:
    pid = _create(router).json()["projectId"]
    requests.patch(f"{router.base}/{pid}", json={"userId": UID, "metadata": CRATE}, timeout=60)
    assert _upload(router, pid, "a.txt", b"a").status_code == 200
    answers: list[requests.Response] = []

    def publish() -> None:
        answers.append(requests.put(f"{router.base}/{pid}", json={"userId": UID}, timeout=60))

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert {a.json()["DOI"] for a in answers} == {f"10.5072/zenodo.{pid}"}
