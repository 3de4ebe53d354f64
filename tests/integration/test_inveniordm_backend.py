"""The inveniordm backend in-process against the fake InvenioRDM on loopback: what the
contract suite does not reach (validation named by the crate property, the 403 mapping,
community review, pagination, faults, secrets)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import common.inveniordm_client as client_module
from common.backends.base import LoginFailed
from common.backends.inveniordm import InvenioRDMArchive
from common.errors import BadRequest, ConnectorError, NotFound, Unauthorized, UpstreamError
from common.identity import Identity
from common.streams import Upload
from tests.support.crates import crate
from tests.support.fake_inveniordm import FakeInvenioRDM
from tests.support.servers import ServerThread

TOKEN = "tok-inv-secret-1"
WHO = Identity("alice@cloud.example.org", TOKEN)
PERSON = {"@id": "#a", "@type": "Person", "familyName": "Example", "givenName": "Alice"}
GOOD = crate(
    {"name": "Good crate", "datePublished": "2026", "creator": {"@id": "#a"}, "license": "MIT"},
    PERSON,
)


@pytest.fixture
def fake(tmp_path) -> Iterator[FakeInvenioRDM]:
    inv = FakeInvenioRDM(tmp_path / "inveniordm")
    inv.add_token(TOKEN, user="alice")
    inv.add_token("tok-inv-bob", user="bob")
    server = ServerThread(inv.app).start()
    inv.url = server.url  # type: ignore[attr-defined]
    yield inv
    server.stop()
    inv.close()


def archive(fake: FakeInvenioRDM, **kw) -> InvenioRDMArchive:
    return InvenioRDMArchive(fake.url, sleep=lambda s: None, **kw)  # type: ignore[attr-defined]


def with_file(arc: InvenioRDMArchive, metadata=None) -> str:
    pid = arc.create_project(WHO, metadata)["projectId"]
    arc.store_file(WHO, pid, Upload("a.csv", iter([b"a,b\n"]), size=4))
    return pid


def test_a_crate_without_creator_is_refused_at_publish_naming_creator(fake) -> None:
    arc = archive(fake)
    no_creator = crate({"name": "No one wrote this", "datePublished": "2026-01"})
    pid = with_file(arc, no_creator)  # a partial draft is fine
    with pytest.raises(BadRequest) as err:
        arc.publish_project(WHO, pid)
    assert err.value.field == "creator"
    assert fake.entries[pid].record is None
    arc.update_project(WHO, pid, GOOD)
    assert arc.publish_project(WHO, pid) == f"10.5072/inveniordm.{pid}"
    assert arc.publish_project(WHO, pid) == f"10.5072/inveniordm.{pid}"  # asked again


def test_values_the_instance_refuses_are_400s_naming_the_property(fake) -> None:
    arc = archive(fake)
    for root, prop in (
        ({"license": "CC-BY-NC-SA-4.0"}, "license"),  # not in this instance's vocabulary
        ({"inLanguage": "fi"}, "inLanguage"),  # "Invalid value fin." names no field
        ({"description": "ab"}, "description"),  # dropped from the draft by InvenioRDM
    ):
        before = set(fake.entries)
        with pytest.raises(BadRequest) as err:
            arc.create_project(WHO, crate(root))
        assert err.value.field == prop, root
        assert set(fake.entries) == before  # nothing half-made is left
    pid = arc.create_project(WHO, None)["projectId"]
    with pytest.raises(BadRequest) as err:
        arc.update_project(WHO, pid, crate({"description": "ab"}))
    assert err.value.field == "description"


def test_403_is_a_404_for_another_user_and_a_401_for_a_bad_token(fake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    arc = archive(fake)
    pid = with_file(arc)
    with pytest.raises(NotFound) as other:
        arc.list_files(Identity("bob@x", "tok-inv-bob"), pid)
    assert other.value.field == "projectId"
    for bad in ("tok-revoked", ""):
        with pytest.raises(Unauthorized) as err:
            arc.get_project(Identity("alice@x", bad or None), pid)
        assert err.value.status == 401
    with pytest.raises(Unauthorized):
        arc.list_projects(Identity("alice@x", "tok-revoked"))
    assert TOKEN not in caplog.text and "tok-revoked" not in caplog.text


def test_every_page_of_projects_is_listed(fake, monkeypatch) -> None:
    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)
    arc = archive(fake)
    made = {arc.create_project(WHO, None)["projectId"] for _ in range(5)}
    listed = [p["projectId"] for p in arc.list_projects(WHO)]
    assert sorted(listed) == sorted(made)
    pages = [r for r in fake.requests if r["path"] == "/api/user/records"]
    assert len(pages) == 3


def test_community_mode_submits_a_review_and_says_so(fake) -> None:
    fake.add_community("rds-lab", curators=["carol"])
    arc = archive(fake, community="rds-lab")
    pid = with_file(arc, GOOD)
    answer = arc.publish_project(WHO, pid)
    assert isinstance(answer, dict)
    assert answer["DOI"] is None and answer["submitted"] is True
    assert (answer["community"], answer["status"]) == ("rds-lab", "submitted")
    assert arc.publish_project(WHO, pid)["status"] == "submitted"  # type: ignore[index]
    fake.accept_review(pid)
    assert arc.publish_project(WHO, pid) == f"10.5072/inveniordm.{pid}"
    # a curator's own submission is included at once: the DOI comes with the answer
    fake.add_community("own", curators=["alice"])
    own = archive(fake, community="own")
    pid2 = with_file(own, GOOD)
    answer = own.publish_project(WHO, pid2)
    assert answer == {
        "DOI": f"10.5072/inveniordm.{pid2}",
        "submitted": True,
        "community": "own",
        "status": "accepted",
        "request": fake.entries[pid2].review.id,  # type: ignore[union-attr]
    }


def test_a_failed_commit_or_content_leaves_no_key(fake) -> None:
    arc = archive(fake)
    pid = arc.create_project(WHO, None)["projectId"]
    fake.inject(500, method="POST", path="/commit$")
    with pytest.raises(ConnectorError):
        arc.store_file(WHO, pid, Upload("x/y.bin", iter([b"abc"]), size=3))
    fake.inject(503, method="PUT", path="/content$")
    with pytest.raises(ConnectorError):
        arc.store_file(WHO, pid, Upload("z.bin", iter([b"abc"]), size=3))
    assert fake.entries[pid].draft.files == {}  # type: ignore[union-attr]


def test_rate_limits_and_faults_are_waited_out(fake) -> None:
    arc = archive(fake)
    pid = arc.create_project(WHO, None)["projectId"]
    fake.inject(429, path=f"/records/{pid}/draft$", headers={"Retry-After": "0"})
    fake.inject(503, method="GET", path=f"/records/{pid}/draft$")
    assert arc.get_project(WHO, pid)
    got = [r["status"] for r in fake.requests if r["path"] == f"/api/records/{pid}/draft"]
    assert got[-3:] == [429, 503, 200]


def test_a_replaced_file_is_the_new_content(fake) -> None:
    arc = archive(fake)
    pid = with_file(arc)
    arc.store_file(WHO, pid, Upload("a.csv", iter([b"new"]), size=3))
    assert fake.file_bytes(pid, "a.csv") == b"new"
    assert [f["size"] for f in arc.list_files(WHO, pid)] == [3]


def test_login_needs_the_records_api(fake) -> None:
    archive(fake).login()
    with pytest.raises(LoginFailed):
        InvenioRDMArchive(fake.url + "/nothing-here", sleep=lambda s: None).login()  # type: ignore[attr-defined]


def test_a_foreign_host_in_an_answer_is_not_followed(fake, monkeypatch) -> None:
    arc = archive(fake)
    ic = arc.client(WHO)
    with pytest.raises(UpstreamError):
        ic._send("GET", "http://elsewhere.invalid/api", idempotent=True)
