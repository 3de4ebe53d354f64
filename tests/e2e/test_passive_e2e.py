"""Passive transfer end to end, driven like RDS: router A serves ``zenodo`` (against the fake
Zenodo) for metadata, router B serves ``webdav`` (against a real wsgidav) for storage, and
A pulls a nested research folder from B into a Zenodo draft.

Tokens: A's ``userId`` is the session form for A's service (the Zenodo token). A asks B
with the bare user first; B has no Port service to look the token up, so it refuses, and
A asks again with a session-form ``userId`` whose token A looked up in the Port service
(the Token Storage double) -- the path RDS takes when a storage cannot resolve users.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from common.backends.zenodo import to_key
from tests.support.crates import crate
from tests.support.fake_zenodo import FakeZenodo
from tests.support.servers import RouterProcess, ServerThread, router_process
from tests.support.token_storage import TokenStorageDouble
from tests.support.webdav import WebDAVServer

USER = "alice@cloud.example.org"
ZEN_TOKEN = "tok-zen-passive"
DAV_TOKEN = "tok-dav-alice"
STORAGE = "port-owncloud"
FOLDER = "/Projekte/Boden 2026/Messungen"
FILES = {
    "raw/2026/a.csv": b"depth,ph\n" + b"1,7\n" * 1000,
    "raw/2026/cut.bin": os.urandom(1024 * 1024 + 5),
    "raw/b b.bin": os.urandom(300_000),
    "Übersicht/naïve 文件 (1).txt": "grüße".encode(),
    "deep/er/still/x.dat": os.urandom(2 * 1024 * 1024 + 17),
    "top.txt": b"top",
}


class CutOne:
    """WSGI middleware in front of wsgidav: a GET of one path breaks off after ``after`` bytes.

    The answer keeps its full Content-Length, so the reader sees a connection that dies
    mid-body, as when a storage server restarts during a download.
    """

    def __init__(self, app: Any, after: int = 40_000) -> None:
        self.app = app
        self.after = after
        self.suffix: str | None = None
        self.cuts = 0

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        result = self.app(environ, start)
        path = environ.get("PATH_INFO", "")
        if self.suffix and environ["REQUEST_METHOD"] == "GET" and path.endswith(self.suffix):
            self.cuts += 1
            return self._cut(result)
        return result

    def _cut(self, result: Iterable[bytes]) -> Iterator[bytes]:
        sent = 0
        try:
            for chunk in result:
                piece = chunk[: max(0, self.after - sent)]
                if not piece:
                    break
                sent += len(piece)
                yield piece
        finally:
            getattr(result, "close", lambda: None)()
        raise ConnectionAbortedError("the storage broke off")


@dataclass
class Setup:
    dav: WebDAVServer
    cut: CutOne
    fake: FakeZenodo
    ts: TokenStorageDouble
    a: RouterProcess
    b: RouterProcess

    @property
    def base(self) -> str:
        return self.a.url + "/metadata/project"

    def put_folder(self, folder: str, files: dict[str, bytes]) -> None:
        home = self.dav.root / "alice"
        for name, data in files.items():
            target = home / folder.strip("/") / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def project(self) -> str:
        created = requests.post(self.base, json={"userId": uid()}, timeout=30)
        assert created.status_code == 200, created.text
        pid = created.json()["projectId"]
        metadata = crate({"name": "Boden 2026", "description": "Pulled by the connector."})
        patched = requests.patch(
            f"{self.base}/{pid}", json={"userId": uid(), "metadata": metadata}, timeout=30
        )
        assert patched.status_code == 200, patched.text
        return pid

    def pull(self, pid: str, folder: str = FOLDER) -> requests.Response:
        form = {"folder": folder, "service": STORAGE, "username": USER, "userId": uid()}
        return requests.post(f"{self.base}/{pid}/files", data=form, timeout=120)

    def bucket_puts(self) -> int:
        return sum(r["method"] == "PUT" and "/api/files/" in r["path"] for r in self.fake.requests)


def uid() -> str:
    return f"port-zenodo://{USER}:{ZEN_TOKEN}"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("passive-e2e")
    dav = WebDAVServer(tmp / "dav", {"alice": (DAV_TOKEN, "app-pass")})
    cut = CutOne(dav.auth)
    dav.server.app = cut
    dav.start()
    fake = FakeZenodo(tmp / "zenodo")
    fake.add_token(ZEN_TOKEN)
    fake_server = ServerThread(fake.app).start()
    ts = TokenStorageDouble()
    ts.tokens[(USER, STORAGE)] = DAV_TOKEN
    ts_server = ServerThread(ts.app).start()
    storage_env = {
        "CONNECTOR_CONFIG": "",
        "CONNECTOR_DATA_DIR": str(tmp / "b"),
        "CONNECTOR_METADATA": "none",
        "CONNECTOR_STORAGE": "webdav",
        "CONNECTOR_SERVICENAME": STORAGE,
        "EFSS_SYSTEM": "owncloud",
        "OWNCLOUD_INSTALLATION_URL": dav.url,
        "OWNCLOUD_OAUTH_CLIENT_ID": "oc-client",
        "OWNCLOUD_OAUTH_CLIENT_SECRET": "oc-secret",
        "USE_CASE_SERVICE_PORT_SERVICE": "",  # B cannot resolve a bare userId itself
    }
    try:
        with router_process(storage_env) as b:
            archive_env = {
                "CONNECTOR_CONFIG": "",
                "CONNECTOR_DATA_DIR": str(tmp / "a"),
                "CONNECTOR_METADATA": "zenodo",
                "CONNECTOR_STORAGE": "none",
                "ZENODO_ADDRESS": fake_server.url,
                "ZENODO_OAUTH_CLIENT_ID": "cid",
                "ZENODO_OAUTH_CLIENT_SECRET": "csecret-passive",
                "RDS_OAUTH_REDIRECT_URI": "https://rds.example/redirect",
                "PASSIVE_STORAGE_URL_TEMPLATE": b.url,
                "USE_CASE_SERVICE_PORT_SERVICE": ts_server.url,
            }
            with router_process(archive_env) as a:
                yield Setup(dav, cut, fake, ts, a, b)
    finally:
        for server in (ts_server, fake_server, dav):
            server.stop()
        fake.close()


def test_pull_stores_every_file_then_a_rerun_skips_them_all(setup: Setup) -> None:
    setup.put_folder(FOLDER, FILES)
    setup.put_folder("/Projekte/Boden 2026/other", {"not-this.txt": b"no"})
    pid = setup.project()

    first = setup.pull(pid)
    assert first.status_code == 200, first.text
    assert first.json()["counts"] == {"stored": len(FILES), "skipped": 0, "failed": 0}
    assert {f["filename"]: (f["size"], f["md5"], f["status"]) for f in first.json()["files"]} == {
        n: (len(d), md5(d), "stored") for n, d in FILES.items()
    }
    record = setup.fake.depositions[int(pid)]
    assert data_keys(record) == sorted(to_key(n) for n in FILES)
    for name, data in FILES.items():
        assert setup.fake.file_bytes(int(pid), to_key(name)) == data

    puts = setup.bucket_puts()
    again = setup.pull(pid)
    assert again.status_code == 200, again.text
    assert {f["filename"]: f["status"] for f in again.json()["files"]} == dict.fromkeys(
        FILES, "skipped"
    )
    assert setup.bucket_puts() == puts  # nothing was uploaded again

    # the token path: B refused the bare user, A looked up B's token and asked again
    lookups = [p for _, m, p in setup.ts.requests if m == "GET" and p.startswith("/user/")]
    assert f"/user/{USER}/service/{STORAGE}" in lookups
    assert " status=401 " in setup.b.log()
    schemes = {scheme for method, _, scheme in setup.dav.auth.seen if method != "OPTIONS"}
    assert schemes == {"bearer"}  # B reached the files with the looked-up token only
    for secret in (ZEN_TOKEN, DAV_TOKEN, "csecret-passive"):
        assert secret not in setup.a.log() and secret not in setup.b.log()


def test_a_file_cut_midway_is_reported_failed_and_a_rerun_resumes(setup: Setup) -> None:
    folder = "/Projekte/cut"
    setup.put_folder(folder, FILES)
    pid = setup.project()
    setup.cut.suffix = "/raw/2026/cut.bin"
    try:
        resp = setup.pull(pid, folder)
    finally:
        setup.cut.suffix = None
    assert setup.cut.cuts >= 1
    assert resp.status_code >= 300 and resp.status_code == 502, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = resp.json()
    assert body["failed"] == ["raw/2026/cut.bin"]
    assert "raw/2026/cut.bin" in body["detail"]
    by_name = {f["filename"]: f for f in body["files"]}
    assert by_name["raw/2026/cut.bin"]["status"] == "failed"
    assert by_name["raw/2026/cut.bin"]["error"]
    assert {n: f["status"] for n, f in by_name.items() if n != "raw/2026/cut.bin"} == dict.fromkeys(
        set(FILES) - {"raw/2026/cut.bin"}, "stored"
    )
    record = setup.fake.depositions[int(pid)]
    assert to_key("raw/2026/cut.bin") not in record.files  # no partial file in the record
    assert data_keys(record) == sorted(to_key(n) for n in FILES if n != "raw/2026/cut.bin")

    puts = setup.bucket_puts()
    resumed = setup.pull(pid, folder)
    assert resumed.status_code == 200, resumed.text
    statuses = {f["filename"]: f["status"] for f in resumed.json()["files"]}
    assert statuses.pop("raw/2026/cut.bin") == "stored"
    assert set(statuses.values()) == {"skipped"}
    assert setup.bucket_puts() == puts + 1
    data = FILES["raw/2026/cut.bin"]
    assert setup.fake.file_bytes(int(pid), to_key("raw/2026/cut.bin")) == data


def test_an_empty_file_is_reported_failed_with_the_reason(setup: Setup) -> None:
    folder = "/Projekte/leer"
    setup.put_folder(folder, {"empty.dat": b"", "full.txt": b"something"})
    pid = setup.project()
    resp = setup.pull(pid, folder)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["failed"] == ["empty.dat"]
    empty = next(f for f in body["files"] if f["filename"] == "empty.dat")
    assert empty["status"] == "failed" and empty["size"] == 0
    assert "empty" in empty["error"] and empty["errorStatus"] == 422
    assert data_keys(setup.fake.depositions[int(pid)]) == ["full.txt"]


def data_keys(record) -> list[str]:
    """The record's keys other than its crate (written on PATCH, issue 13)."""
    return sorted(k for k in record.files if k != "ro-crate-metadata.json")


def test_a_folder_that_cannot_fit_even_zipped_is_refused_before_any_byte(setup: Setup) -> None:
    folder = "/Projekte/viele"
    # 101 top-level folders: zipped one by one they are still 101 entries
    setup.put_folder(folder, {f"d{i:03}/{n}.txt": b"x" for i in range(101) for n in "ab"})
    pid = setup.project()
    puts = setup.bucket_puts()
    resp = setup.pull(pid, folder)
    assert resp.status_code == 409, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    detail = resp.json()["detail"]
    assert resp.json()["field"] == "folder" and "the record can take 99 more" in detail
    assert setup.bucket_puts() == puts
    assert data_keys(setup.fake.depositions[int(pid)]) == []


def nested_folder() -> dict[str, bytes]:
    """350 files: 300 in raw/<site>/<day>/, 20 in docs/, 26 in img/thumbs/, 4 on top."""
    files: dict[str, bytes] = {}
    for site in range(1, 7):
        for day in range(1, 6):
            for m in range(10):
                files[f"raw/site {site}/day{day}/m{m}.csv"] = os.urandom(100 + 37 * m)
    files["raw/site 1/day1/m0.csv"] = os.urandom(1024 * 1024 + 3)  # spans chunks
    files["raw/site 2/day3/m4.csv"] = b""  # empty: refused loose by Zenodo, fine in a zip
    files.update({f"docs/Übersicht {i}.txt": f"doc {i}".encode() for i in range(20)})
    files.update({f"img/thumbs/t{i:02}.png": os.urandom(2000) for i in range(26)})
    files.update({f"top{i}.txt": f"top {i}".encode() for i in range(4)})
    assert len(files) == 350
    return files


def test_a_350_file_folder_arrives_whole_zipped_to_fit_then_a_rerun_skips_all(
    setup: Setup,
) -> None:
    folder = "/Projekte/gross"
    files = nested_folder()
    setup.put_folder(folder, files)
    pid = setup.project()

    first = setup.pull(pid, folder)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["counts"] == {"stored": 350, "skipped": 0, "failed": 0}
    record = setup.fake.depositions[int(pid)]
    assert len(record.files) <= 100
    bundles = {b["filename"]: b for b in body["bundles"]}
    assert all(b["status"] == "stored" for b in bundles.values())
    # the deepest folders, the fullest first, until it fits: 28 of the 30 day folders
    assert len(bundles) == 28 and all(n.startswith("raw/site ") for n in bundles)
    report = {f["filename"]: f for f in body["files"]}
    assert set(report) == set(files)
    opened: dict[str, zipfile.ZipFile] = {}
    for name, data in files.items():
        row = report[name]
        assert row["size"] == len(data) and row["md5"] == md5(data), name
        if "bundle" in row:  # inside a zip: open it as the archive holds it
            if row["bundle"] not in opened:
                raw = setup.fake.file_bytes(int(pid), to_key(row["bundle"]))
                assert len(raw) == bundles[row["bundle"]]["size"]
                assert md5(raw) == bundles[row["bundle"]]["md5"]
                opened[row["bundle"]] = zipfile.ZipFile(io.BytesIO(raw))
                assert opened[row["bundle"]].testzip() is None  # every CRC-32 right
            assert row["bundle"] == name.rsplit("/", 1)[0] + ".zip"
            assert opened[row["bundle"]].read(row["entry"]) == data, name
        else:
            assert setup.fake.file_bytes(int(pid), to_key(name)) == data, name
    assert sum(len(z.namelist()) for z in opened.values()) == 280
    assert data_keys(record) == sorted(
        to_key(n) for n in [*bundles, *(n for n in files if "bundle" not in report[n])]
    )

    puts = setup.bucket_puts()
    again = setup.pull(pid, folder)
    assert again.status_code == 200, again.text
    assert again.json()["counts"] == {"stored": 0, "skipped": 350, "failed": 0}
    assert {b["status"] for b in again.json()["bundles"]} == {"skipped"}
    assert setup.bucket_puts() == puts  # the zips came out byte for byte the same


def test_check_batch_counts_present_files_once_and_known_bytes(tmp_path, monkeypatch) -> None:
    from common.backends import zenodo
    from common.errors import Conflict, PayloadTooLarge
    from common.identity import Identity
    from common.streams import Upload

    fake = FakeZenodo(tmp_path / "zen")
    fake.add_token(ZEN_TOKEN)
    server = ServerThread(fake.app).start()
    try:
        archive = zenodo.ZenodoArchive(server.url, "cid", "cs", "https://rds.example/cb")
        who = Identity(USER, ZEN_TOKEN)
        pid = archive.create_project(who, None)["projectId"]
        monkeypatch.setattr(zenodo, "MAX_FILES", 4)  # 3 files and the crate's slot
        for name in ("a/1.txt", "a/2.txt"):
            archive.store_file(who, pid, Upload(name, iter([b"12345"]), size=5))
        archive.check_batch(who, pid, [("a/1.txt", None), ("a/2.txt", None), ("b.txt", None)])
        with pytest.raises(Conflict) as err:
            archive.check_batch(who, pid, [("a/1.txt", None), ("b.txt", None), ("c.txt", None)])
        assert err.value.field == "folder"
        assert err.value.extra["notStored"] == ["a/1.txt", "b.txt", "c.txt"]
        monkeypatch.setattr(zenodo, "MAX_RECORD_BYTES", 12)
        archive.check_batch(who, pid, [("a/1.txt", 7), ("b.txt", None)])  # 5 kept + 7
        with pytest.raises(PayloadTooLarge):
            archive.check_batch(who, pid, [("b.txt", 8)])  # 10 kept + 8
    finally:
        server.stop()
        fake.close()
