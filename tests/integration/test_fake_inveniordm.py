"""The fake InvenioRDM itself, through a real loopback server and ``requests``.

These tests pin the rules the fake enforces (see its module docstring for the sources), so
a connector tested against it meets what a real InvenioRDM instance would answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.fake_inveniordm import FakeInvenioRDM
from tests.support.servers import ServerThread

ALICE, BOB = "tok-alice-inv", "tok-bob-inv"
TIMEOUT = 30
METADATA: dict[str, Any] = {
    "resource_type": {"id": "dataset"},
    "title": "Soil samples 2026",
    "publication_date": "2026-11-27",
    "creators": [
        {
            "person_or_org": {"type": "personal", "given_name": "Alice", "family_name": "Ex"},
            "affiliations": [{"name": "Example University"}],
        }
    ],
    "rights": [{"id": "cc-by-4.0"}],
    "languages": [{"id": "eng"}],
    "description": "Measurements.",
}


class Api:
    """A tiny client for the tests: the base URL plus a token."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=TIMEOUT, **kw)

    def draft(self, metadata: dict[str, Any] | None = None, **body: Any) -> str:
        r = self.call("POST", "/api/records", json={"metadata": metadata or METADATA, **body})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def upload(self, rid: str, key: str, data: bytes, *, commit: bool = True) -> requests.Response:
        quoted = requests.utils.quote(key, safe="")
        r = self.call("POST", f"/api/records/{rid}/draft/files", json=[{"key": key}])
        assert r.status_code == 201, r.text
        r = self.call(
            "PUT",
            f"/api/records/{rid}/draft/files/{quoted}/content",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 200, r.text
        if not commit:
            return r
        return self.call("POST", f"/api/records/{rid}/draft/files/{quoted}/commit")


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[FakeInvenioRDM, str]]:
    inv = FakeInvenioRDM(tmp_path / "inveniordm")
    inv.add_token(ALICE, user="alice")
    inv.add_token(BOB, user="bob")
    server = ServerThread(inv.app).start()
    yield inv, server.url
    server.stop()
    inv.close()


@pytest.fixture
def alice(fake: tuple[FakeInvenioRDM, str]) -> Api:
    return Api(fake[1], ALICE)


@pytest.fixture
def bob(fake: tuple[FakeInvenioRDM, str]) -> Api:
    return Api(fake[1], BOB)


def test_full_flow_with_nested_key(fake: tuple[FakeInvenioRDM, str], alice: Api) -> None:
    inv, url = fake
    rid = alice.draft()
    data = b"a,b\n1,2\n" * 1000
    r = alice.call("POST", f"/api/records/{rid}/draft/files", json=[{"key": "raw/site 1/a.csv"}])
    assert r.status_code == 201
    assert [(e["key"], e["status"]) for e in r.json()["entries"]] == [
        ("raw/site 1/a.csv", "pending")
    ]
    # the key quoted as one segment, and with its slashes as they are, reach the same file
    put = alice.call(
        "PUT",
        f"/api/records/{rid}/draft/files/raw%2Fsite%201%2Fa.csv/content",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert put.status_code == 200 and put.json()["status"] == "pending"
    commit = alice.call("POST", f"/api/records/{rid}/draft/files/raw/site%201/a.csv/commit")
    assert commit.status_code == 200
    entry = commit.json()
    assert entry["status"] == "completed"
    assert entry["checksum"] == "md5:" + hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert entry["size"] == len(data)
    listing = alice.call("GET", f"/api/records/{rid}/draft/files").json()
    assert [e["key"] for e in listing["entries"]] == ["raw/site 1/a.csv"]
    one = alice.call("GET", f"/api/records/{rid}/draft/files/raw%2Fsite%201%2Fa.csv")
    assert one.json()["checksum"] == entry["checksum"]

    published = alice.call("POST", f"/api/records/{rid}/draft/actions/publish")
    assert published.status_code == 202, published.text
    record = published.json()
    assert record["is_published"] is True
    assert record["pids"]["doi"]["identifier"] == f"10.5072/inveniordm.{rid}"
    assert record["metadata"]["resource_type"]["title"] == {"en": "Dataset"}
    assert record["metadata"]["creators"][0]["person_or_org"]["name"] == "Ex, Alice"
    public = Api(url, None).call("GET", f"/api/records/{rid}")
    assert public.status_code == 200 and public.json()["id"] == rid
    content = Api(url, None).call("GET", f"/api/records/{rid}/files/raw/site%201/a.csv/content")
    assert content.content == data
    assert inv.file_bytes(rid, "raw/site 1/a.csv") == data
    # the published record has no draft until it is edited
    assert alice.call("GET", f"/api/records/{rid}/draft").status_code == 404


def test_partial_drafts_report_errors_and_keep_what_is_valid(alice: Api) -> None:
    r = alice.call(
        "POST",
        "/api/records",
        json={"metadata": {"title": "ok title", "publication_date": "2026-13-01"}},
    )
    assert r.status_code == 201
    draft = r.json()
    fields = {e["field"]: e["messages"] for e in draft["errors"]}
    assert fields == {
        "metadata.resource_type": ["Missing data for required field."],
        "metadata.publication_date": ["Please provide a valid date or interval."],
        "metadata.creators": ["Missing data for required field."],
    }
    assert draft["metadata"] == {"title": "ok title"}  # the invalid date is not stored
    assert draft["is_published"] is False
    rid = draft["id"]
    full = alice.call("PUT", f"/api/records/{rid}/draft", json={"metadata": METADATA})
    assert full.status_code == 200
    # the metadata is complete; only the missing files are reported now
    assert [e["field"] for e in full.json()["errors"]] == ["files.enabled"]
    # an unknown vocabulary id refuses the whole save
    bad = {**METADATA, "rights": [{"id": "cc-by-9.9"}]}
    r = alice.call("PUT", f"/api/records/{rid}/draft", json={"metadata": bad})
    assert r.status_code == 400 and r.json()["message"] == "Invalid value cc-by-9.9."
    assert alice.call("GET", f"/api/records/{rid}/draft").json()["metadata"]["rights"] == [
        {"id": "cc-by-4.0", "title": {"en": "Creative Commons Attribution 4.0 International"}}
    ]


def test_json_bodies_need_json_content_type(alice: Api) -> None:
    r = alice.call("POST", "/api/records", data="{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = alice.call("POST", "/api/records", data="{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"resource_type": None}, "metadata.resource_type", "Missing data for required field."),
        ({"title": None}, "metadata.title", "Missing data for required field."),
        ({"title": "ab"}, "metadata.title", "Shorter than minimum length 3."),
        (
            {"publication_date": None},
            "metadata.publication_date",
            "Missing data for required field.",
        ),
        (
            {"publication_date": "27.11.2026"},
            "metadata.publication_date",
            "Please provide a valid date or interval.",
        ),
        (
            {"publication_date": "2026-02-30"},
            "metadata.publication_date",
            "Please provide a valid date or interval.",
        ),
        (
            {"publication_date": "2026/2020"},
            "metadata.publication_date",
            "Please provide a valid date or interval.",
        ),
        ({"creators": []}, "metadata.creators", "Missing data for required field."),
        (
            {"creators": [{"affiliations": []}]},
            "metadata.creators.0.person_or_org",
            "Missing data for required field.",
        ),
        (
            {"creators": [{"person_or_org": {"type": "personal", "given_name": "A"}}]},
            "metadata.creators.0.person_or_org.family_name",
            "Family name cannot be blank.",
        ),
        (
            {"creators": [{"person_or_org": {"type": "organizational"}}]},
            "metadata.creators.0.person_or_org.name",
            "Name cannot be blank.",
        ),
        (
            {"creators": [{"person_or_org": {"family_name": "X"}}]},
            "metadata.creators.0.person_or_org.type",
            "Invalid value. Choose one of ['organizational', 'personal'].",
        ),
    ],
)
def test_every_publish_rule(alice: Api, change: dict[str, Any], field: str, message: str) -> None:
    metadata = {k: v for k, v in {**METADATA, **change}.items() if v is not None}
    r = alice.call("POST", "/api/records", json={"metadata": metadata})
    assert r.status_code == 201
    # the draft is saved, with the problem in ``errors`` (and without the invalid value)
    assert {"field": field, "messages": [message]} in r.json()["errors"]
    rid = r.json()["id"]
    alice.upload(rid, "a.txt", b"x")
    r = alice.call("POST", f"/api/records/{rid}/draft/actions/publish")
    assert r.status_code == 400
    body = r.json()
    assert body["message"] == "A validation error occurred."
    assert any(e["field"] == field.split(".0.")[0] or e["field"] == field for e in body["errors"])
    assert alice.call("GET", f"/api/records/{rid}").status_code == 404


@pytest.mark.parametrize(
    "date", ["2026", "2026-11", "2026-11-27", "2020/2026-11", "2026-01-01/2026-12-31"]
)
def test_edtf_dates_that_publish(alice: Api, date: str) -> None:
    rid = alice.draft({**METADATA, "publication_date": date})
    alice.upload(rid, "a.txt", b"x")
    assert alice.call("POST", f"/api/records/{rid}/draft/actions/publish").status_code == 202


def test_organisation_creator_and_unknown_vocabularies(alice: Api) -> None:
    org = {**METADATA, "creators": [{"person_or_org": {"type": "organizational", "name": "Lab"}}]}
    rid = alice.draft(org)
    alice.upload(rid, "a.txt", b"x")
    assert alice.call("POST", f"/api/records/{rid}/draft/actions/publish").status_code == 202
    for bad in ({"resource_type": {"id": "spaceship"}}, {"languages": [{"id": "xxx"}]}):
        r = alice.call("POST", "/api/records", json={"metadata": {**METADATA, **bad}})
        assert r.status_code == 400 and r.json()["message"].startswith("Invalid value")


def test_files_rules_on_publish(alice: Api) -> None:
    rid = alice.draft()
    r = alice.call("POST", f"/api/records/{rid}/draft/actions/publish")
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "files.enabled"
    alice.upload(rid, "a.txt", b"x", commit=False)
    r = alice.call("POST", f"/api/records/{rid}/draft/actions/publish")
    assert r.status_code == 400
    assert r.json()["errors"] == [
        {
            "field": "files",
            "messages": ["One or more files have not completed their transfer, please wait."],
        }
    ]
    # a metadata-only record publishes without files
    meta_only = alice.draft(files={"enabled": False})
    assert alice.call("POST", f"/api/records/{meta_only}/draft/actions/publish").status_code == 202


def test_another_users_draft_is_403_and_guests_too(
    fake: tuple[FakeInvenioRDM, str], alice: Api, bob: Api
) -> None:
    rid = alice.draft()
    alice.upload(rid, "a.txt", b"x")
    guest = Api(fake[1], None)
    stranger = Api(fake[1], "tok-unknown")
    for api in (bob, guest, stranger):
        assert api.call("GET", f"/api/records/{rid}/draft").status_code == 403
        assert api.call("PUT", f"/api/records/{rid}/draft", json={}).status_code == 403
        assert api.call("GET", f"/api/records/{rid}/draft/files/a.txt").status_code == 403
        assert api.call("POST", f"/api/records/{rid}/draft/actions/publish").status_code == 403
        assert api.call("DELETE", f"/api/records/{rid}/draft").status_code == 403
    assert guest.call("POST", "/api/records", json={"metadata": METADATA}).status_code == 403
    assert guest.call("GET", "/api/user/records").status_code == 403
    # an unknown record, or an unknown key, is 404 before any permission check
    assert bob.call("GET", "/api/records/zzzzz-zzzzz/draft").status_code == 404
    assert bob.call("GET", f"/api/records/{rid}/draft/files/nope.txt").status_code == 404


def test_file_cap_and_size_limits(fake: tuple[FakeInvenioRDM, str], alice: Api) -> None:
    inv = fake[0]
    rid = alice.draft()
    r = alice.call(
        "POST", f"/api/records/{rid}/draft/files", json=[{"key": f"f{i}"} for i in range(100)]
    )
    assert r.status_code == 201 and len(r.json()["entries"]) == 100
    r = alice.call("POST", f"/api/records/{rid}/draft/files", json=[{"key": "one-more"}])
    assert r.status_code == 400
    assert "max amount" in r.json()["message"]
    r = alice.call("POST", f"/api/records/{rid}/draft/files", json=[{"key": "f1"}])
    assert r.status_code == 400  # cap first; an existing key is refused as well
    other = alice.draft()
    assert (
        alice.call("POST", f"/api/records/{other}/draft/files", json=[{"key": "a"}]).status_code
        == 201
    )
    assert (
        alice.call("POST", f"/api/records/{other}/draft/files", json=[{"key": "a"}]).status_code
        == 400
    )
    inv.max_file_size = 10
    r = alice.call("PUT", f"/api/records/{other}/draft/files/a/content", data=b"x" * 11)
    assert r.status_code == 400 and r.json()["message"] == "Maximum file size exceeded."
    assert inv.requests[-1]["bytes_read"] == 0


def test_chunked_upload_refused_without_reading(
    fake: tuple[FakeInvenioRDM, str], alice: Api
) -> None:
    inv = fake[0]
    rid = alice.draft()
    alice.call("POST", f"/api/records/{rid}/draft/files", json=[{"key": "a.bin"}])

    def body() -> Iterator[bytes]:
        yield b"abc"
        yield b"def"

    r = alice.call("PUT", f"/api/records/{rid}/draft/files/a.bin/content", data=body())
    assert r.status_code == 400
    assert inv.requests[-1]["chunked"] is True and inv.requests[-1]["bytes_read"] == 0
    entry = alice.call("GET", f"/api/records/{rid}/draft/files/a.bin").json()
    assert entry["status"] == "pending" and "checksum" not in entry


def test_commit_without_content_fails_and_empty_files(
    fake: tuple[FakeInvenioRDM, str], alice: Api
) -> None:
    inv = fake[0]
    rid = alice.draft()
    alice.call("POST", f"/api/records/{rid}/draft/files", json=[{"key": "never.txt"}])
    r = alice.call("POST", f"/api/records/{rid}/draft/files/never.txt/commit")
    assert r.status_code == 500  # InvenioRDM's FilesManager.commit raises a bare Exception
    # a 0-byte file is accepted by default (RECORDS_RESOURCES_ALLOW_EMPTY_FILES)
    r = alice.upload(rid, "empty.txt", b"")
    assert r.status_code == 200 and r.json()["size"] == 0
    assert r.json()["checksum"] == "md5:d41d8cd98f00b204e9800998ecf8427e"
    inv.allow_empty_files = False
    r = alice.upload(rid, "empty2.txt", b"", commit=True)
    assert r.status_code == 400 and r.json()["message"] == "Empty files are not accepted."


def test_content_to_a_committed_key_fails_and_removes_it(alice: Api) -> None:
    rid = alice.draft()
    alice.upload(rid, "a.txt", b"one")
    r = alice.call("PUT", f"/api/records/{rid}/draft/files/a.txt/content", data=b"two")
    assert r.status_code == 400
    assert alice.call("GET", f"/api/records/{rid}/draft/files/a.txt").status_code == 404


def test_delete_file_and_discard_drafts(fake: tuple[FakeInvenioRDM, str], alice: Api) -> None:
    rid = alice.draft()
    alice.upload(rid, "a.txt", b"x")
    assert alice.call("DELETE", f"/api/records/{rid}/draft/files/a.txt").status_code == 204
    assert alice.call("GET", f"/api/records/{rid}/draft/files").json()["entries"] == []
    assert alice.call("DELETE", f"/api/records/{rid}/draft").status_code == 204
    assert alice.call("GET", f"/api/records/{rid}/draft").status_code == 404

    pub = alice.draft()
    alice.upload(pub, "a.txt", b"x")
    alice.call("POST", f"/api/records/{pub}/draft/actions/publish")
    edit = alice.call("POST", f"/api/records/{pub}/draft")
    assert edit.status_code == 201 and edit.json()["is_published"] is True
    # files of a published record are locked in its edit draft
    r = alice.call("POST", f"/api/records/{pub}/draft/files", json=[{"key": "b.txt"}])
    assert r.status_code == 403
    changed = {**METADATA, "title": "Changed title"}
    alice.call("PUT", f"/api/records/{pub}/draft", json={"metadata": changed})
    assert alice.call("DELETE", f"/api/records/{pub}/draft").status_code == 204
    assert alice.call("GET", f"/api/records/{pub}").json()["metadata"]["title"] == METADATA["title"]
    assert fake[0].file_bytes(pub, "a.txt") == b"x"


def test_review_request_flow(fake: tuple[FakeInvenioRDM, str], alice: Api) -> None:
    inv = fake[0]
    community = inv.add_community("soil-lab")
    rid = alice.draft()
    alice.upload(rid, "a.txt", b"x")
    body = {"receiver": {"community": "soil-lab"}, "type": "community-submission"}
    r = alice.call("PUT", f"/api/records/{rid}/draft/review", json=body)
    assert r.status_code == 200
    assert r.json()["status"] == "created" and r.json()["receiver"] == {"community": community}
    bad = {"receiver": {"community": "nobody"}, "type": "community-submission"}
    assert alice.call("PUT", f"/api/records/{rid}/draft/review", json=bad).status_code == 404
    # a draft with a review cannot be published directly
    assert alice.call("POST", f"/api/records/{rid}/draft/actions/publish").status_code == 400
    r = alice.call("POST", f"/api/records/{rid}/draft/actions/submit-review", json={})
    assert r.status_code == 202 and r.json()["status"] == "submitted"
    assert alice.call("GET", f"/api/records/{rid}/draft").json()["status"] == "in_review"
    assert alice.call("GET", f"/api/records/{rid}").status_code == 404
    inv.accept_review(rid)
    record = alice.call("GET", f"/api/records/{rid}").json()
    assert record["is_published"] is True
    assert record["parent"]["communities"]["ids"] == [community]


def test_submit_review_validates_the_draft(fake: tuple[FakeInvenioRDM, str], alice: Api) -> None:
    fake[0].add_community("c1")
    rid = alice.draft({"title": "Only a title"})
    body = {"receiver": {"community": "c1"}, "type": "community-submission"}
    alice.call("PUT", f"/api/records/{rid}/draft/review", json=body)
    r = alice.call("POST", f"/api/records/{rid}/draft/actions/submit-review")
    assert r.status_code == 400 and r.json()["errors"]


def test_user_records_pagination(alice: Api, bob: Api) -> None:
    ids = [alice.draft({**METADATA, "title": f"Record {i:02d}"}) for i in range(5)]
    bob.draft()
    r = alice.call("GET", "/api/user/records", params={"size": 2, "page": 1})
    assert r.status_code == 200
    page1 = r.json()
    assert page1["hits"]["total"] == 5
    assert [h["id"] for h in page1["hits"]["hits"]] == ids[::-1][:2]
    assert "prev" not in page1["links"]
    seen = []
    url = page1["links"]["self"]
    while url:
        body = requests.get(url, headers=alice.headers, timeout=TIMEOUT).json()
        seen += [h["id"] for h in body["hits"]["hits"]]
        url = body["links"].get("next")
    assert seen == ids[::-1]
    assert alice.call("GET", "/api/user/records", params={"page": 0}).status_code == 400
    found = alice.call("GET", "/api/user/records", params={"q": "record 03"}).json()
    assert [h["id"] for h in found["hits"]["hits"]] == [ids[3]]


def test_rate_limit(fake: tuple[FakeInvenioRDM, str], alice: Api, bob: Api) -> None:
    inv = fake[0]
    now = [1_800_000_000.0]
    inv.clock = lambda: now[0]
    inv.rate_limit, inv.rate_window = 3, 60.0
    rid = alice.draft()
    r = alice.call("GET", f"/api/records/{rid}/draft")
    assert r.headers["X-RateLimit-Limit"] == "3"
    assert r.headers["X-RateLimit-Remaining"] == "1"
    assert r.headers["X-RateLimit-Reset"] == "1800000060"
    alice.call("GET", f"/api/records/{rid}/draft")
    now[0] += 15
    changed = {**METADATA, "title": "Should not be stored"}
    r = alice.call("PUT", f"/api/records/{rid}/draft", json={"metadata": changed})
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "45" and r.headers["X-RateLimit-Remaining"] == "0"
    assert inv.requests[-1]["bytes_read"] == 0
    assert inv.entries[rid].draft is not None
    assert inv.entries[rid].draft.data["metadata"]["title"] == METADATA["title"]
    # another user has a window of its own; the next window lets alice in again
    assert bob.call("GET", "/api/user/records").status_code == 200
    now[0] += 46
    assert alice.call("GET", f"/api/records/{rid}/draft").status_code == 200


def test_fault_injection(fake: tuple[FakeInvenioRDM, str], alice: Api) -> None:
    inv = fake[0]
    rid = alice.draft()
    inv.inject(503, method="POST", path=r"/actions/publish$", headers={"Retry-After": "2"})
    alice.upload(rid, "a.txt", b"x")
    r = alice.call("POST", f"/api/records/{rid}/draft/actions/publish")
    assert r.status_code == 503 and r.headers["Retry-After"] == "2"
    assert inv.entries[rid].record is None
    assert alice.call("POST", f"/api/records/{rid}/draft/actions/publish").status_code == 202
    assert [e["status"] for e in inv.requests[-2:]] == [503, 202]


def test_vocabularies(alice: Api) -> None:
    r = alice.call("GET", "/api/vocabularies/licenses/cc-by-4.0")
    assert r.status_code == 200 and r.json()["id"] == "cc-by-4.0"
    assert alice.call("GET", "/api/vocabularies/resourcetypes/dataset").status_code == 200
    assert alice.call("GET", "/api/vocabularies/languages/eng").status_code == 200
    assert alice.call("GET", "/api/vocabularies/licenses/cc-by-9.9").status_code == 404
