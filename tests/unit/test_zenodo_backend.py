"""ZenodoArchive against ``responses``: every route's Zenodo calls, limits, checksums, config."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
import requests
import responses
from RDS import Util
from responses import matchers

from common import rocrate
from common.backends.base import LoginFailed
from common.backends.zenodo import ZenodoArchive, from_key, to_key
from common.backends.zenodo_crate import CRATE_KEY, tag_of, untagged
from common.config import load_settings
from common.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    UnprocessableContent,
    UpstreamError,
)
from common.identity import Identity
from common.registry import build_payload
from common.runtime import Runtime
from common.streams import Upload
from tests.support.crates import crate

Z = "http://zenodo.test"
DEPS = f"{Z}/api/deposit/depositions"
BUCKET = f"{Z}/api/files/b-7"
TOKEN = "s3cr3t-token-value"
WHO = Identity("alice@cloud.example.org", TOKEN)
CRATE = crate(
    {
        "name": "Soil samples",
        "description": "Moisture of soil.",
        "datePublished": "2026-11-27",
        "license": {"@id": "https://creativecommons.org/licenses/by/4.0/"},
        "creator": [{"@id": "#a"}, {"@id": "#b"}],
    },
    {"@id": "#a", "@type": "Person", "givenName": "Alice", "familyName": "Example"},
    {"@id": "#b", "@type": "Person", "name": "Bob Builder"},
)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def archive() -> ZenodoArchive:
    return ZenodoArchive(Z, "cid", "csecret", "https://rds.example/redirect", sleep=Sleeps())


def dep(dep_id: int = 7, *, published: bool = False, files=(), **metadata) -> dict:
    links = {"self": f"{DEPS}/{dep_id}"}
    if not published:
        links["bucket"] = BUCKET
    out = {
        "id": dep_id,
        "submitted": published,
        "state": "done" if published else "unsubmitted",
        "metadata": {"title": "Soil samples", **metadata},
        "links": links,
        "files": list(files),
    }
    if published:
        out["doi"] = f"10.5072/zenodo.{dep_id}"
    return out


PUBLISHABLE = {"creators": [{"name": "Example, Alice"}], "license": "cc-by-4.0"}
ONE_FILE = [{"id": "f", "filename": "d%2Fx.csv", "filesize": 3, "checksum": "abc"}]


def objects(*keys_sizes) -> dict:
    return {
        "contents": [
            {"key": k, "size": s, "checksum": f"md5:{hashlib.md5(b'x' * s).hexdigest()}"}
            for k, s in keys_sizes
        ]
    }


# -- key mapping ---------------------------------------------------------------------
TRICKY = [
    "a.csv",
    "a/b.csv",
    "a%2Fb.csv",
    "a%252Fb.csv",
    "%",
    "%2f/x",
    "a/%2F/b",
    "Übersicht/naïve 文件 (1).txt",
    "100% done/x y.txt",
]


def test_key_mapping_is_flat_reversible_and_collision_free() -> None:
    keys = [to_key(p) for p in TRICKY]
    assert all("/" not in k for k in keys)
    assert [from_key(k) for k in keys] == TRICKY
    assert len(set(keys)) == len(TRICKY)
    assert to_key("data/raw/m.csv") == "data%2Fraw%2Fm.csv"


# -- projects ------------------------------------------------------------------------
@responses.activate
def test_list_projects_maps_each_deposition_with_its_files(archive) -> None:
    files = [{"id": "f", "filename": "d%2Fx.csv", "filesize": 3, "checksum": "abc"}]
    responses.get(DEPS, json=[dep(7, files=files), dep(8, published=True)])
    projects = archive.list_projects(WHO)
    assert [p["projectId"] for p in projects] == ["7", "8"]
    root = rocrate.find_root(projects[0]["metadata"])
    assert root["name"] == "Soil samples"
    assert "d/x.csv" in json.dumps(projects[0]["metadata"])


@responses.activate
def test_create_with_and_without_metadata(archive) -> None:
    responses.post(DEPS, status=201, json=dep(9))
    responses.post(DEPS, status=201, json=dep(10))
    assert archive.create_project(WHO, None)["projectId"] == "9"
    created = archive.create_project(WHO, CRATE)
    assert created["projectId"] == "10"
    assert rocrate.find_root(created["metadata"])["name"] == "Soil samples"
    sent = [json.loads(c.request.body)["metadata"] for c in responses.calls]
    # each draft carries its create tag (a lost answer is found by it), nothing else added
    assert all(tag_of(m) for m in sent) and tag_of(sent[0]) != tag_of(sent[1])
    assert untagged(sent[0]) == {}
    assert untagged(sent[1]) == rocrate.crate_to_zenodo(CRATE)


@responses.activate
def test_get_and_update_from_the_crate(archive) -> None:
    mapped = rocrate.crate_to_zenodo(CRATE)
    assert [c["name"] for c in mapped["creators"]][:2] == ["Example, Alice", "Builder, Bob"]
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.put(
        f"{DEPS}/7",
        json=dep(7, **mapped),
        match=[matchers.json_params_matcher({"metadata": mapped})],
    )
    assert rocrate.find_root(archive.get_project(WHO, "7"))["name"] == "Soil samples"
    crate_put = responses.add_callback(
        responses.PUT, f"{BUCKET}/ro-crate-metadata.json", callback=bucket_put(CRATE_KEY)
    )
    updated = archive.update_project(WHO, "7", CRATE)
    assert crate_put.call_count == 1  # the record carries the crate as given
    assert len(rocrate.find_root(updated)["creator"]) == 2
    assert rocrate.find_root(archive.update_project(WHO, "7", None))["name"] == "Soil samples"


@responses.activate
def test_update_of_a_published_project_is_409_without_a_put(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7, published=True))
    with pytest.raises(Conflict) as err:
        archive.update_project(WHO, "7", CRATE)
    assert "published" in err.value.detail
    assert [c.request.method for c in responses.calls] == ["GET"]


@responses.activate
def test_validation_errors_name_the_crate_property(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.put(
        f"{DEPS}/7",
        status=400,
        json={
            "message": "Validation error.",
            "errors": [{"field": "metadata.creators.0.name", "messages": ["Missing data."]}],
        },
    )
    with pytest.raises(BadRequest) as err:
        archive.update_project(WHO, "7", CRATE)
    assert err.value.status == 400
    assert err.value.field == "creator"
    assert "creator: Missing data." in err.value.detail


@responses.activate
def test_unknown_and_non_numeric_ids_are_404(archive) -> None:
    responses.get(f"{DEPS}/99", status=404, json={"message": "PID does not exist."})
    with pytest.raises(NotFound) as err:
        archive.get_project(WHO, "99")
    assert err.value.field == "projectId"
    with pytest.raises(NotFound):
        archive.get_project(WHO, "../x")
    assert len(responses.calls) == 1


@responses.activate
def test_publish_answers_the_doi_and_is_idempotent(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7, files=ONE_FILE, **PUBLISHABLE))
    seen: dict = {}
    responses.add_callback(
        responses.PUT,
        f"{BUCKET}/ro-crate-metadata.json",
        callback=bucket_put(CRATE_KEY, seen=seen),
    )
    responses.post(f"{DEPS}/7/actions/publish", status=202, json=dep(7, published=True))
    assert archive.publish_project(WHO, "7") == "10.5072/zenodo.7"
    crate = json.loads(seen["data"])
    part = next(e for e in crate["@graph"] if e["@id"] == "d/x.csv")
    assert (part["contentSize"], part["encodingFormat"]) == ("3", "text/csv")
    assert part["identifier"]["value"] == "abc"
    responses.replace(responses.GET, f"{DEPS}/7", json=dep(7, published=True))
    assert archive.publish_project(WHO, "7") == "10.5072/zenodo.7"
    assert len([c for c in responses.calls if c.request.method == "POST"]) == 1


@responses.activate
def test_publish_without_files_names_files(archive) -> None:
    """Zenodo's own refusal is named too (the crate file does not count as data)."""
    responses.get(f"{DEPS}/7", json=dep(7, files=ONE_FILE, **PUBLISHABLE))
    responses.add_callback(
        responses.PUT, f"{BUCKET}/ro-crate-metadata.json", callback=bucket_put(CRATE_KEY)
    )
    responses.post(
        f"{DEPS}/7/actions/publish",
        status=400,
        json={
            "message": "Validation error.",
            "errors": [{"field": "files", "message": "Minimum one file must be provided."}],
        },
    )
    with pytest.raises(BadRequest) as err:
        archive.publish_project(WHO, "7")
    assert "files: Minimum one file" in err.value.detail and err.value.field == "files"


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"license": "cc-by-4.0"}, "creator"),
        ({"license": "cc-by-4.0", "creators": [{"name": "Unknown"}]}, "creator"),
        ({"creators": [{"name": "Example, Alice"}], "access_right": "open"}, "license"),
    ],
)
@responses.activate
def test_publish_without_creator_or_licence_is_400_and_sends_nothing(
    archive, metadata, field
) -> None:
    responses.get(f"{DEPS}/7", json=dep(7, files=ONE_FILE, **metadata))
    with pytest.raises(BadRequest) as err:
        archive.publish_project(WHO, "7")
    assert err.value.field == field and field in err.value.detail
    assert [c.request.method for c in responses.calls] == ["GET"]


@pytest.mark.parametrize("status", [201, 204])
@responses.activate
def test_delete_draft_accepts_201_and_204(archive, status) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.delete(f"{DEPS}/7", status=status)
    assert archive.delete_project(WHO, "7") is None


@responses.activate
def test_delete_published_is_409_and_sends_no_delete(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7, published=True))
    with pytest.raises(Conflict) as err:
        archive.delete_project(WHO, "7")
    assert err.value.status == 409 and "published" in err.value.detail
    assert [c.request.method for c in responses.calls] == ["GET"]


# -- files ---------------------------------------------------------------------------
@responses.activate
def test_list_and_get_files_show_original_paths(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.get(BUCKET, json=objects(("z.txt", 1), ("a%2Fb.csv", 2)))
    listed = archive.list_files(WHO, "7")
    assert [f["id"] for f in listed] == ["a/b.csv", "z.txt"]
    assert listed[0] == {
        "id": "a/b.csv",
        "filename": "a/b.csv",
        "size": 2,
        "checksum": listed[0]["checksum"],
    }
    assert listed[0]["checksum"].startswith("md5:")
    assert archive.get_file(WHO, "7", "a/b.csv")["size"] == 2
    with pytest.raises(NotFound):
        archive.get_file(WHO, "7", "nope")


@responses.activate
def test_files_of_a_published_project_come_from_the_deposition(archive) -> None:
    files = [{"id": "f", "filename": "d%2Fx.csv", "filesize": 3, "checksum": "abc"}]
    responses.get(f"{DEPS}/7", json=dep(7, published=True, files=files))
    assert archive.list_files(WHO, "7") == [
        {"id": "d/x.csv", "filename": "d/x.csv", "size": 3, "checksum": "md5:abc"}
    ]


@responses.activate
def test_rename_goes_through_the_classic_files_api(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.get(BUCKET, json=objects(("a%2Fb.csv", 2)))
    responses.get(
        f"{DEPS}/7/files",
        json=[{"id": "f1", "filename": "a%2Fb.csv", "filesize": 2, "checksum": "c"}],
    )
    responses.put(
        f"{DEPS}/7/files/f1",
        json={"id": "f1", "filename": "c%2Fd.csv", "filesize": 2, "checksum": "c"},
        match=[matchers.json_params_matcher({"filename": "c%2Fd.csv"})],
    )
    renamed = archive.update_file(WHO, "7", "a/b.csv", {"filename": "c/d.csv"})
    assert renamed["id"] == "c/d.csv" and renamed["size"] == 2


@responses.activate
def test_rename_onto_an_existing_name_is_409(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.get(BUCKET, json=objects(("a", 1), ("b", 1)))
    with pytest.raises(Conflict):
        archive.update_file(WHO, "7", "a", {"filename": "b"})


@responses.activate
def test_delete_one_file_uses_the_flat_key(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.delete(f"{BUCKET}/a%252Fb.csv", status=204)
    archive.delete_file(WHO, "7", "a/b.csv")
    responses.delete(f"{BUCKET}/gone", status=404, json={"message": "Object does not exist."})
    with pytest.raises(NotFound) as err:
        archive.delete_file(WHO, "7", "gone")
    assert err.value.field == "fileId"


@responses.activate
def test_delete_all_files_reports_what_is_left_on_failure(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.get(BUCKET, json=objects(("a", 1), ("d%2Fb", 1), ("c", 1)))
    responses.delete(f"{BUCKET}/a", status=204)
    responses.delete(f"{BUCKET}/d%252Fb", status=500)
    with pytest.raises(UpstreamError) as err:
        archive.delete_files(WHO, "7")
    assert err.value.extra["notDeleted"] == ["d/b", "c"]


@responses.activate
def test_delete_all_files(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.get(BUCKET, json=objects(("a", 1), ("b", 1)))
    responses.delete(f"{BUCKET}/a", status=204)
    responses.delete(f"{BUCKET}/b", status=204)
    archive.delete_files(WHO, "7")
    assert [c.request.method for c in responses.calls].count("DELETE") == 2


def bucket_put(key_url: str, *, corrupt: bool = False, seen: dict | None = None):
    """A bucket PUT callback that consumes the streamed body like Zenodo does."""

    def callback(request):
        data = b"".join(request.body)
        if seen is not None:
            seen.update(headers=dict(request.headers), data=data)
        md5 = "0" * 32 if corrupt else hashlib.md5(data).hexdigest()
        return 201, {}, json.dumps({"key": key_url, "size": len(data), "checksum": f"md5:{md5}"})

    return callback


@responses.activate
def test_store_streams_into_the_bucket_and_verifies_md5(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.get(BUCKET, json=objects())
    seen: dict = {}
    responses.add_callback(
        responses.PUT, f"{BUCKET}/d%252F%C3%BC.csv", callback=bucket_put("d%2Fü.csv", seen=seen)
    )
    upload = Upload("d/ü.csv", iter([b"abc", b"def"]), size=6)
    entry = archive.store_file(WHO, "7", upload)
    assert entry == {
        "id": "d/ü.csv",
        "filename": "d/ü.csv",
        "size": 6,
        "checksum": f"md5:{hashlib.md5(b'abcdef').hexdigest()}",
    }
    assert seen["data"] == b"abcdef" and seen["headers"]["Content-Length"] == "6"


@responses.activate
def test_store_with_the_multipart_size_hint(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.get(BUCKET, json=objects())
    seen: dict = {}
    responses.add_callback(responses.PUT, f"{BUCKET}/h", callback=bucket_put("h", seen=seen))
    archive.store_file(WHO, "7", Upload("h", iter([b"12", b"345"]), size_hint=5))
    assert seen["headers"]["Content-Length"] == "5" and seen["data"] == b"12345"


@responses.activate
def test_store_of_unknown_size_spools_to_disk_first(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.get(BUCKET, json=objects())
    seen: dict = {}
    responses.add_callback(responses.PUT, f"{BUCKET}/u", callback=bucket_put("u", seen=seen))
    archive.store_file(WHO, "7", Upload("u", iter([b"x" * 1000, b"y" * 24])))
    assert seen["headers"]["Content-Length"] == "1024" and len(seen["data"]) == 1024
    assert "Transfer-Encoding" not in seen["headers"]


@responses.activate
def test_checksum_mismatch_deletes_the_remote_file_and_is_502(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    damaged = {"key": "f", "size": 4, "checksum": "md5:" + "0" * 32}
    responses.get(BUCKET, json={"contents": [damaged]})
    responses.add_callback(responses.PUT, f"{BUCKET}/f", callback=bucket_put("f", corrupt=True))
    deleted = responses.delete(f"{BUCKET}/f", status=204)
    with pytest.raises(UpstreamError) as err:
        archive.store_file(WHO, "7", Upload("f", iter([b"data"]), size=4))
    assert err.value.status == 502 and err.value.extra["notStored"] == ["f"]
    assert deleted.call_count == 1


@responses.activate
def test_a_damaged_copy_replaced_meanwhile_is_not_deleted(archive) -> None:
    """Clean-up owns only the object its own PUT confirmed (size and checksum compared)."""
    responses.get(f"{DEPS}/7", json=dep(7))
    good = {"key": "f", "size": 4, "checksum": "md5:" + hashlib.md5(b"data").hexdigest()}
    responses.get(BUCKET, json={"contents": [good]})  # another request stored it whole
    responses.add_callback(responses.PUT, f"{BUCKET}/f", callback=bucket_put("f", corrupt=True))
    deleted = responses.delete(f"{BUCKET}/f", status=204)
    with pytest.raises(UpstreamError):
        archive.store_file(WHO, "7", Upload("f", iter([b"data"]), size=4))
    assert deleted.call_count == 0


@responses.activate
def test_empty_file_is_refused_before_any_byte_is_sent(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.get(BUCKET, json=objects())
    with pytest.raises(UnprocessableContent) as err:
        archive.store_file(WHO, "7", Upload("data/empty.dat", iter([]), size=0))
    assert "data/empty.dat" in err.value.detail and err.value.status == 422
    assert "PUT" not in [c.request.method for c in responses.calls]


@responses.activate
def test_the_101st_file_is_refused_but_replacing_one_is_not(archive) -> None:
    full = [{"filename": f"f{i}", "filesize": 1, "checksum": "c"} for i in range(99)]
    responses.get(f"{DEPS}/7", json=dep(7, files=full))  # 99 and the crate's slot
    with pytest.raises(Conflict) as err:
        archive.store_file(WHO, "7", Upload("new", iter([b"x"]), size=1))
    assert "100" in err.value.detail and err.value.extra["notStored"] == ["new"]
    assert "ro-crate-metadata.json" in err.value.detail
    responses.add_callback(responses.PUT, f"{BUCKET}/f3", callback=bucket_put("f3"))
    assert archive.store_file(WHO, "7", Upload("f3", iter([b"x"]), size=1))["size"] == 1


@responses.activate
def test_over_50_gb_per_record_is_413_before_sending(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7, files=[{"filename": "big", "filesize": 1}]))
    never = iter(())  # no byte is read: the refusal comes from the announced size
    with pytest.raises(PayloadTooLarge):
        archive.store_file(WHO, "7", Upload("huge", never, size=50 * 1000**3))
    assert "PUT" not in [c.request.method for c in responses.calls]


def test_a_key_over_255_bytes_is_400_before_calling_zenodo(archive) -> None:
    with pytest.raises(BadRequest) as err:
        archive.store_file(WHO, "7", Upload("/".join(["d" * 60] * 5), iter([b"x"]), size=1))
    assert err.value.field == "filename"


@responses.activate
def test_uploads_into_a_published_project_are_409(archive) -> None:
    responses.get(f"{DEPS}/7", json=dep(7, published=True))
    with pytest.raises(Conflict):
        archive.store_file(WHO, "7", Upload("f", iter([b"x"]), size=1))


# -- settings, registration, login -----------------------------------------------------
BASE_ENV = {
    "CONNECTOR_CONFIG": "",
    "CONNECTOR_METADATA": "zenodo",
    "CONNECTOR_STORAGE": "none",
    "ZENODO_OAUTH_CLIENT_ID": "cid",
    "ZENODO_OAUTH_CLIENT_SECRET": "csecret",
    "RDS_OAUTH_REDIRECT_URI": "https://rds.example/redirect",
}


@pytest.mark.parametrize(
    "missing", ["ZENODO_OAUTH_CLIENT_ID", "ZENODO_OAUTH_CLIENT_SECRET", "RDS_OAUTH_REDIRECT_URI"]
)
def test_missing_oauth_settings_name_the_variable(missing) -> None:
    env = {k: v for k, v in BASE_ENV.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Runtime.build(load_settings(env))


def test_bad_address_is_a_config_error_and_default_is_the_sandbox() -> None:
    with pytest.raises(ConfigError, match="ZENODO_ADDRESS"):
        ZenodoArchive.from_settings(load_settings({**BASE_ENV, "ZENODO_ADDRESS": "ftp://x"}))
    archive = ZenodoArchive.from_settings(
        load_settings({**BASE_ENV, "CONNECTOR_READ_TIMEOUT": "3600"})
    )
    assert archive.address == "https://sandbox.zenodo.org"
    assert archive.client(WHO).timeout == (10.0, 3600.0)


def test_registration_payload_survives_the_rds_parser() -> None:
    settings = load_settings(
        {
            **BASE_ENV,
            "ZENODO_ADDRESS": "http://127.0.0.1:5000",
            "ZENODO_DISPLAYNAME": "Zenodo Sandbox",
        }
    )
    rt = Runtime.build(settings)
    payload = build_payload(settings, [rt.archive])
    assert Util.getServiceObject(payload).to_dict() == payload
    assert payload["authorize_url"] == (
        "http://127.0.0.1:5000/oauth/authorize?response_type=code"
        "&scope=deposit%3Awrite+deposit%3Aactions"
        "&redirect_uri=https%3A%2F%2Frds.example%2Fredirect&client_id=cid"
    )
    assert payload["refresh_url"] == "http://127.0.0.1:5000/oauth/token"
    assert payload["client_secret"] == "csecret"
    assert payload["projectLinkTemplate"] == "http://127.0.0.1:5000/records/${projectId}"
    assert payload["displayName"] == "Zenodo Sandbox"
    assert payload["fileTransferArchive"] == 0 and payload["implements"] == ["metadata"]
    assert payload["icon"].startswith("data:image/")
    assert "csecret" not in repr(rt.archive)


@responses.activate
def test_login_accepts_401_and_retries_connection_errors(archive) -> None:
    responses.get(DEPS, body=requests.ConnectionError("refused"))
    responses.get(DEPS, status=401)
    archive.login()
    assert archive.sleep and "Authorization" not in responses.calls[-1].request.headers


@responses.activate
def test_login_gives_up_after_bounded_attempts(archive) -> None:
    responses.get(DEPS, status=503)
    with pytest.raises(LoginFailed, match="did not answer"):
        archive.login()
    assert len(archive.sleep) == archive.login_attempts - 1
    responses.replace(responses.GET, DEPS, status=404)
    with pytest.raises(LoginFailed, match="404"):
        archive.login()


@responses.activate
def test_no_token_in_logs_or_errors(archive, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    responses.get(f"{DEPS}/7", body=requests.ConnectionError(f"refused Bearer {TOKEN}"))
    with pytest.raises(Exception) as err:
        archive.get_project(WHO, "7")
    assert TOKEN not in caplog.text
    assert TOKEN not in f"{err.value} {err.value!r} {getattr(err.value, 'extra', '')}"


def test_an_answer_missing_its_id_is_a_502_not_a_crash(monkeypatch) -> None:
    """A 201 without ``id`` (a proxy's page, a changed API) must not become a bare 500."""
    from common.backends.zenodo import ZenodoArchive
    from common.errors import UpstreamError
    from common.zenodo_client import ZenodoClient

    archive = ZenodoArchive.__new__(ZenodoArchive)
    archive.address, archive.sleep = "http://z.test", lambda s: None
    monkeypatch.setattr(ZenodoClient, "create_deposition", lambda self, *a, **k: {"links": {}})
    monkeypatch.setattr(
        ZenodoArchive, "client", lambda self, who: ZenodoClient("http://z.test", "t"), raising=False
    )
    with pytest.raises(UpstreamError) as err:
        archive.create_project(Identity("alice", "t"), None)
    assert isinstance(err.value.__cause__, KeyError)
