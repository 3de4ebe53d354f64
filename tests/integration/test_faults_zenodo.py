"""Faults between the Zenodo backend and a real (fake) Zenodo on loopback, through a proxy.

Every Zenodo operation meets every fault of issue 6 (429 with and without ``Retry-After``,
500, 502, 503, 504, a reset mid-request, a server that never answers, a body that is not
JSON, an answer broken off midway, an answer lost after the work was done). Each case
checks the attempts the server saw against the fault policy of ``common/zenodo_client.py``
(idempotent calls and publish retried, a bound on all of them, uploads never replayed),
the problem the backend raises, that no file is left in the bucket after a failed upload,
and that no token or client secret escaped into a log line or an exception. Since issue 13
uploads within their replay window are retried like any idempotent call, and a create or
an upload whose answer is lost is reconciled with what Zenodo holds (so some faults end in
success, never in a second draft or a lost file).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator

import pytest

from common.backends.zenodo import ZenodoArchive
from common.errors import ConnectorError
from common.identity import Identity
from common.streams import Upload
from tests.support.crates import crate
from tests.support.fake_zenodo import FakeZenodo
from tests.support.fault_proxy import FaultProxy
from tests.support.secrets import SecretWatch
from tests.support.servers import ServerThread

USER = "alice@cloud.example.org"
TOKEN = "tok-ZenFault-8Hq2xW"
CLIENT_SECRET = "cs-ZenFault-Pz4kR9"
ATTEMPTS = 4  # ZenodoClient's default bound
DATA = b"0123456789" * 20_000  # 200 kB: large enough to break off midway
CRATE = crate(
    {
        "name": "Fault test",
        "description": "Files synced by RDS.",
        "datePublished": "2026-11-27",
        "license": "CC-BY-4.0",
        "creator": [{"@id": "#alice"}],
    },
    {"@id": "#alice", "@type": "Person", "givenName": "Alice", "familyName": "Example"},
)

# fault -> (rule for the proxy, status of the problem)
FAULTS: dict[str, tuple[dict, int]] = {
    "429-retry-after": ({"action": "status", "status": 429, "headers": {"Retry-After": "1"}}, 429),
    "429": ({"action": "status", "status": 429}, 429),
    "500": ({"action": "status", "status": 500}, 502),
    "502": ({"action": "status", "status": 502}, 503),
    "503": ({"action": "status", "status": 503, "body": b"<h1>down</h1>"}, 503),
    "504": ({"action": "status", "status": 504}, 504),
    "reset": ({"action": "reset", "after": 100_000}, 503),
    "hang": ({"action": "hang"}, 504),
    "not-json": ({"action": "garbage"}, 502),
    "cut": ({"action": "cut", "after": 10}, 503),
}
# operation -> (method, path regex of the call that meets the fault)
OPERATIONS = {
    "create": ("POST", r"/depositions$"),
    "update": ("PUT", r"/depositions/\d+$"),
    "upload": ("PUT", r"/api/files/"),
    "publish": ("POST", r"/actions/publish$"),
    "list-files": ("GET", r"/api/files/[^/]+$"),
    "delete": ("DELETE", r"/depositions/\d+$"),
}
IDEMPOTENT = {"update", "list-files", "delete"}


# faults after which the work is found done on Zenodo (the answer alone was lost)
RECONCILED = {"publish": {"cut"}, "delete": {"cut"}, "create": {"cut", "reset"}, "upload": {"cut"}}


def expected_attempts(op: str, fault: str) -> int:
    """What ``ZenodoClient`` documents: who retries which fault, and how often at most."""
    if fault.startswith("429"):
        return ATTEMPTS  # every call waits a 429 out, uploads within their window too
    if op == "publish":
        return 1 if fault == "not-json" else ATTEMPTS  # re-read, re-sent if not published
    if op == "create":  # sent again only when its tag is on no draft
        return ATTEMPTS
    if fault in ("502", "503", "504", "reset", "hang", "cut") and op in IDEMPOTENT | {"upload"}:
        return ATTEMPTS
    return 1


@pytest.fixture(scope="module")
def zenodo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeZenodo, FaultProxy]]:
    fake = FakeZenodo(tmp_path_factory.mktemp("zenodo"))
    fake.add_token(TOKEN)
    server = ServerThread(fake.app).start()
    proxy = FaultProxy(server.port).start()
    yield fake, proxy
    proxy.stop()
    server.stop()
    fake.close()


@pytest.fixture
def proxy(zenodo: tuple[FakeZenodo, FaultProxy]) -> Iterator[FaultProxy]:
    proxy = zenodo[1]
    proxy.rules.clear()
    proxy.seen.clear()
    yield proxy
    proxy.rules.clear()


@pytest.fixture
def fake(zenodo: tuple[FakeZenodo, FaultProxy]) -> FakeZenodo:
    return zenodo[0]


def make_archive(proxy: FaultProxy, sleeps: list[float]) -> ZenodoArchive:
    return ZenodoArchive(
        proxy.url,
        "client-id",
        CLIENT_SECRET,
        "https://rds.example/redirect",
        sleep=sleeps.append,
        connect_timeout=0.5,
        read_timeout=0.5,
    )


def upload(name: str = "data/a.bin") -> Upload:
    return Upload(
        name, iter([DATA[i : i + 65536] for i in range(0, len(DATA), 65536)]), size=len(DATA)
    )


def run_operation(
    archive: ZenodoArchive, who: Identity, op: str
) -> tuple[str, Callable[[], object]]:
    """Set up a draft fit for ``op`` (no fault yet) and return it with the call under test."""
    pid = archive.create_project(who, CRATE)["projectId"]
    if op in ("publish", "list-files"):
        archive.store_file(who, pid, Upload("ready.txt", iter([b"ready"]), size=5))
    calls = {
        "create": lambda: archive.create_project(who, CRATE),
        "update": lambda: archive.update_project(who, pid, CRATE),
        "upload": lambda: archive.store_file(who, pid, upload()),
        "publish": lambda: archive.publish_project(who, pid),
        "list-files": lambda: archive.list_files(who, pid),
        "delete": lambda: archive.delete_project(who, pid),
    }
    return pid, calls[op]


def data_files(dep) -> int:
    """Files other than the crate (a publish writes the crate before it is refused)."""
    return len([k for k in dep.files if k != "ro-crate-metadata.json"])


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("op", list(OPERATIONS))
def test_every_operation_meets_every_fault(fake, proxy, op: str, fault: str) -> None:
    rule, status = FAULTS[fault]
    method, path = OPERATIONS[op]
    sleeps: list[float] = []
    archive = make_archive(proxy, sleeps)
    who = Identity(USER, TOKEN)
    watch = SecretWatch([TOKEN, CLIENT_SECRET])
    with watch.capture_logs():
        pid, call = run_operation(archive, who, op)
        before = {int(k): data_files(d) for k, d in fake.depositions.items()}
        proxy.seen.clear()
        proxy.inject(method=method, path=path, times=99, **rule)
        err = None
        try:
            call()
        except ConnectorError as exc:
            err = exc
    proxy.rules.clear()
    new_drafts = len(fake.depositions) - len(before)
    if op == "create":
        assert new_drafts <= 1, "a create left a second draft"
    if err is None:  # the work was done before the answer broke off: found out, not redone
        assert fault in RECONCILED[op], f"{op} succeeded through {fault}"
        if op in ("publish", "delete"):
            assert proxy.attempts(method, path) == 1
            assert fake.depositions.get(int(pid)) is None or fake.depositions[int(pid)].submitted
        elif op == "create":
            assert new_drafts == 1
        else:
            assert fake.file_bytes(int(pid), "data%2Fa.bin") == DATA
        return
    watch.add_exception(err)
    watch.add_object(archive)
    watch.check()
    problem = err
    assert problem.status == status, (problem.status, problem.detail)
    assert proxy.attempts(method, path) == expected_attempts(op, fault), proxy.seen
    assert new_drafts == 0 if op == "create" else True
    # retries, plus at most two waits between re-reads of a reconciliation
    assert len(sleeps) <= ATTEMPTS + 2 and all(s <= 60 for s in sleeps), sleeps
    if fault == "429-retry-after":
        assert problem.headers.get("Retry-After") == "1"
    dep = fake.depositions.get(int(pid))
    if op in ("upload", "update", "publish", "list-files"):
        assert dep is not None and not dep.submitted
        assert data_files(dep) == before[int(pid)], "a failed call changed the bucket"


def test_transient_faults_are_waited_out(fake, proxy) -> None:
    """One 429 (Retry-After honoured), one 503 and one reset on reads: the call succeeds."""
    sleeps: list[float] = []
    archive = make_archive(proxy, sleeps)
    who = Identity(USER, TOKEN)
    pid = archive.create_project(who, CRATE)["projectId"]
    archive.store_file(who, pid, Upload("x.txt", iter([b"x"]), size=1))
    proxy.seen.clear()
    proxy.inject(
        "status", method="GET", path=r"/api/files/", status=429, headers={"Retry-After": "2"}
    )
    proxy.inject("status", method="GET", path=r"/api/files/", status=503)
    proxy.inject("reset", method="GET", path=r"/api/files/")
    assert [f["id"] for f in archive.list_files(who, pid)] == ["x.txt"]
    assert proxy.attempts("GET", r"/api/files/") == 4
    assert sleeps[0] == 2.0 and len(sleeps) == 3
    # a create is retried after a 429 (Zenodo did nothing) but not after a 503
    proxy.inject("status", method="POST", path=r"/depositions$", status=429)
    assert archive.create_project(who, None)["projectId"]


def test_a_publish_whose_answer_is_lost_is_recognised(fake, proxy) -> None:
    """Zenodo published but the answer never came: the re-read finds the DOI, no 2nd POST."""
    archive = make_archive(proxy, [])
    who = Identity(USER, TOKEN)
    pid = archive.create_project(who, CRATE)["projectId"]
    archive.store_file(who, pid, Upload("ready.txt", iter([b"ready"]), size=5))
    proxy.inject("lose", method="POST", path=r"/actions/publish$")
    assert archive.publish_project(who, pid) == f"10.5072/zenodo.{pid}"
    assert proxy.attempts("POST", r"/actions/publish$") == 1


def test_an_upload_whose_answer_is_lost_is_reconciled(fake, proxy) -> None:
    """Zenodo stored the file but the answer was lost: the re-read bucket holds our size and
    MD5, so it is a success -- and nothing is deleted (issue 13: the old clean-up removed
    it and reported a failure)."""
    archive = make_archive(proxy, [])
    who = Identity(USER, TOKEN)
    pid = archive.create_project(who, CRATE)["projectId"]
    proxy.inject("lose", method="PUT", path=r"/api/files/")
    stored = archive.store_file(who, pid, upload())
    assert stored["checksum"] == "md5:" + hashlib.md5(DATA).hexdigest()
    assert fake.file_bytes(int(pid), "data%2Fa.bin") == DATA
    assert proxy.attempts("DELETE", r"/api/files/") == 0


def test_a_delete_whose_answer_is_lost_is_done(fake, proxy) -> None:
    """The retried DELETE finds nothing (404): the first one worked, so it is a success."""
    archive = make_archive(proxy, [])
    who = Identity(USER, TOKEN)
    pid = archive.create_project(who, CRATE)["projectId"]
    proxy.inject("lose", method="DELETE", path=r"/depositions/\d+$")
    archive.delete_project(who, pid)
    assert int(pid) not in fake.depositions
    assert proxy.attempts("DELETE") == 2


def test_faults_through_the_router(fake, proxy, make_runtime) -> None:
    """The whole answer path: problem+json, status, field, notStored; no secret anywhere."""
    from local_router import build_app
    from tests.conftest import uid

    runtime = make_runtime(
        CONNECTOR_METADATA="zenodo",
        CONNECTOR_STORAGE="none",
        CONNECTOR_SERVICENAME="port-zenodo",
        ZENODO_ADDRESS=proxy.url,
        ZENODO_OAUTH_CLIENT_ID="client-id",
        ZENODO_OAUTH_CLIENT_SECRET=CLIENT_SECRET,
        RDS_OAUTH_REDIRECT_URI="https://rds.example/redirect",
        CONNECTOR_CONNECT_TIMEOUT="0.5",
        CONNECTOR_READ_TIMEOUT="2",
        ZENODO_REPLAY_WINDOW_MIB="0",  # no replay: a reset mid-upload reaches the caller
    )
    runtime.archive.sleep = lambda s: None
    client = build_app(runtime).test_client()
    who = uid(USER, TOKEN, "port-zenodo")
    watch = SecretWatch([TOKEN, CLIENT_SECRET])
    with watch.capture_logs(), watch.capture_problems():
        created = client.post("/metadata/project", json={"userId": who, "metadata": CRATE})
        pid = created.json["projectId"]
        proxy.inject("reset", method="PUT", path=r"/api/files/", after=50_000)
        broken = client.post(
            f"/metadata/project/{pid}/files",
            data={"userId": who, "filename": "a.bin", "file": (io.BytesIO(DATA), "a.bin")},
            content_type="multipart/form-data",
        )
        drafts = len(fake.depositions)
        proxy.inject("hang", method="POST", path=r"/depositions$")  # found on no draft: resent
        hung = client.post("/metadata/project", json={"userId": who, "metadata": CRATE})
        assert len(fake.depositions) == drafts + 1
        proxy.rules.clear()
        proxy.inject("status", method="GET", path=r"/depositions$", status=429, times=99)
        limited = client.get("/metadata/project", json={"userId": who})
        proxy.rules.clear()
        proxy.inject("garbage", method="PATCH", path="/never")  # unused: the next call passes
        ok = client.post(
            f"/metadata/project/{pid}/files",
            data={"userId": who, "filename": "a.bin", "file": (io.BytesIO(DATA), "a.bin")},
            content_type="multipart/form-data",
        )
    for resp in (created, broken, hung, limited, ok):
        watch.add_response(resp)
    watch.check()
    assert broken.status_code == 503 and broken.content_type == "application/problem+json"
    assert broken.json["field"] == "file" and broken.json["notStored"] == ["a.bin"]
    assert "a.bin" in broken.json["detail"] and broken.headers["Retry-After"]
    assert hung.status_code == 200, hung.json
    assert limited.status_code == 429 and limited.content_type == "application/problem+json"
    assert ok.status_code == 200, ok.json
    assert ok.json["files"][0]["checksum"] == "md5:" + hashlib.md5(DATA).hexdigest()
    assert fake.file_bytes(int(pid), "a.bin") == DATA
