"""Issue 13's races against the fake Zenodo on loopback, the backend in-process. Two
``ZenodoArchive`` instances play two gunicorn workers (no lock, no cache shared)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from common.backends.zenodo import ZenodoArchive
from common.backends.zenodo_files import MiB
from common.errors import Conflict, ConnectorError, PayloadTooLarge
from common.identity import Identity
from common.streams import Upload
from tests.support.crates import crate
from tests.support.fake_zenodo import FakeZenodo, serving

TOKEN = "tok-races"
WHO = Identity("alice@cloud.example.org", TOKEN)
CRATE = crate(
    {"name": "Races", "license": "CC-BY-4.0", "creator": {"@id": "#a"}},
    {"@id": "#a", "@type": "Person", "name": "Alice Example"},
)


@pytest.fixture
def fake(tmp_path):
    with serving(tmp_path / "zenodo", TOKEN) as zen:
        yield zen


def worker(fake: FakeZenodo, **kw) -> ZenodoArchive:
    kw.setdefault("sleep", lambda s: None)
    return ZenodoArchive(fake.url, "cid", "cs", "https://rds.example/cb", **kw)


def until(condition, timeout: float = 10.0) -> None:
    """Wait for a condition another thread makes true (bounded; not a wait for time)."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition never held"
        time.sleep(0.01)


def test_a_failed_upload_never_removes_what_another_confirmed(fake) -> None:
    """Worker A's upload of ``k`` breaks off after worker B stored ``k`` whole: the file
    stays (issue 13: A's clean-up used to delete it, and the DOI came without it)."""
    a, b = worker(fake), worker(fake)
    pid = a.create_project(WHO, CRATE)["projectId"]
    go = threading.Event()
    failures: list[BaseException] = []

    def broken() -> Iterator[bytes]:
        yield b"a" * 100_000
        go.wait(10)
        raise ConnectionError("the caller went away")

    def upload_a() -> None:
        try:
            a.store_file(WHO, pid, Upload("k.bin", broken(), size=200_000))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            failures.append(exc)

    thread = threading.Thread(target=upload_a)
    thread.start()
    until(lambda: any(r["method"] == "PUT" and r["path"].endswith("/k.bin") for r in fake.requests))
    assert b.store_file(WHO, pid, Upload("k.bin", iter([b"b" * 1000]), size=1000))["size"] == 1000
    go.set()
    thread.join(30)
    assert failures and isinstance(failures[0], ConnectionError | ConnectorError)
    assert fake.file_bytes(int(pid), "k.bin") == b"b" * 1000
    assert not [r for r in fake.requests if r["method"] == "DELETE"]


@pytest.mark.parametrize("window", [0, 8 * MiB])
def test_a_store_that_lands_after_the_timeout_is_reconciled(fake, window) -> None:
    """The PUT times out while Zenodo is still storing; the re-read (or, within the
    window, the re-sent PUT) finds the file: success, and nothing is deleted."""
    archive = worker(fake, read_timeout=0.3, replay_window=window)
    pid = archive.create_project(WHO, CRATE)["projectId"]
    held = fake.hold_store = threading.Event()
    fake.stored_event.clear()

    def release(seconds: float) -> None:
        held.set()
        fake.stored_event.wait(10)

    archive.sleep = release
    stored = archive.store_file(WHO, pid, Upload("late.bin", iter([b"x" * 5000]), size=5000))
    assert stored["size"] == 5000
    assert fake.file_bytes(int(pid), "late.bin") == b"x" * 5000
    assert not [r for r in fake.requests if r["method"] == "DELETE"]


def test_concurrent_uploads_to_one_project_respect_the_cap(fake) -> None:
    """Eight threads, four free slots (100 less the crate's less 95): four 200s, four 409s,
    and Zenodo never had to refuse anything; one PUT per stored file."""
    archive = worker(fake)
    pid = archive.create_project(WHO, None)["projectId"]
    dep = fake.depositions[int(pid)]
    for i in range(95):
        archive.store_file(WHO, pid, Upload(f"f{i}", iter([b"x"]), size=1))
    before = len(fake.requests)
    results: list[object] = []

    def upload(i: int) -> None:
        try:
            results.append(archive.store_file(WHO, pid, Upload(f"n{i}", iter([b"y"]), size=1)))
        except Conflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, dict) for r in results) == 4
    assert sum(isinstance(r, Conflict) for r in results) == 4
    assert len(dep.files) == 99
    assert len(fake.requests) - before == 4  # the PUTs only: the cache holds the rest


def test_publishes_from_two_workers_both_answer_the_doi(fake) -> None:
    a, b = worker(fake), worker(fake)
    pid = a.create_project(WHO, CRATE)["projectId"]
    a.update_project(WHO, pid, CRATE)
    a.store_file(WHO, pid, Upload("a.txt", iter([b"a"]), size=1))
    release = fake.hold(method="POST", path=r"/actions/publish$")
    dois: list[str] = []
    thread = threading.Thread(target=lambda: dois.append(a.publish_project(WHO, pid)))
    thread.start()
    until(lambda: not fake.holds)  # A's publish is held inside Zenodo
    dois.append(b.publish_project(WHO, pid))  # B publishes meanwhile
    release.set()
    thread.join(30)
    assert dois == [f"10.5072/zenodo.{pid}"] * 2


def test_an_upload_of_unknown_size_is_refused_at_the_spool_limit(fake) -> None:
    archive = worker(fake, spool_limit=1 * MiB)
    pid = archive.create_project(WHO, None)["projectId"]
    pulled = []

    def endless() -> Iterator[bytes]:
        while True:
            pulled.append(1)
            yield b"z" * 65536

    with pytest.raises(PayloadTooLarge) as err:
        archive.store_file(WHO, pid, Upload("stream.bin", endless()))
    assert err.value.status == 413 and "1 MiB" in err.value.detail
    assert err.value.extra["notStored"] == ["stream.bin"]
    assert len(pulled) <= 17  # stopped at the limit, not at the end of the disk
