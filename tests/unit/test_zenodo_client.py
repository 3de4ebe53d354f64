"""ZenodoClient against ``responses``: every call, and every fault of the retry policy."""

from __future__ import annotations

import hashlib
import json

import pytest
import requests
import responses
from responses import matchers

from common.backends.zenodo_files import MiB, ReplayBody
from common.errors import (
    Conflict,
    ConnectorError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from common.runtime import USER_AGENT
from common.streams import SizedMeter
from common.zenodo_client import ZenodoClient, ZenodoValidationError, retry_after

Z = "http://zenodo.test"
DEPS = f"{Z}/api/deposit/depositions"
TOKEN = "s3cr3t-token-value"
BUCKET = f"{Z}/api/files/b-1"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def zc(sleeps: Sleeps) -> ZenodoClient:
    return ZenodoClient(Z, TOKEN, sleep=sleeps, clock=lambda: 1_000_000.0)


def dep(dep_id: int = 7, **kw) -> dict:
    return {"id": dep_id, "submitted": False, "state": "unsubmitted", "metadata": {}, **kw}


def assert_no_token(exc: BaseException) -> None:
    text = f"{exc} {exc!r} {getattr(exc, 'detail', '')} {getattr(exc, 'extra', '')}"
    assert TOKEN not in text


@responses.activate
def test_list_reads_every_page_with_bearer_and_user_agent(zc) -> None:
    page1 = [dep(i) for i in range(100)]
    page2 = [dep(i) for i in range(100, 105)]
    headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": USER_AGENT}
    for page, body in ((1, page1), (2, page2)):
        responses.get(
            DEPS,
            json=body,
            match=[
                matchers.query_param_matcher(
                    {"page": "1" if page == 1 else "2", "size": "100", "sort": "mostrecent"}
                ),
                matchers.header_matcher(headers),
            ],
        )
    got = zc.list_depositions()
    assert [d["id"] for d in got] == list(range(105))
    assert len(responses.calls) == 2


@responses.activate
def test_list_stops_on_an_exactly_full_last_page(zc) -> None:
    responses.get(
        DEPS,
        json=[dep(i) for i in range(100)],
        match=[matchers.query_param_matcher({"page": "1", "size": "100", "sort": "mostrecent"})],
    )
    responses.get(
        DEPS,
        json=[],
        match=[matchers.query_param_matcher({"page": "2", "size": "100", "sort": "mostrecent"})],
    )
    assert len(zc.list_depositions()) == 100


@responses.activate
def test_create_sends_empty_object_or_metadata(zc) -> None:
    responses.post(DEPS, json=dep(1), status=201, match=[matchers.json_params_matcher({})])
    responses.post(
        DEPS,
        json=dep(2),
        status=201,
        match=[matchers.json_params_matcher({"metadata": {"title": "T"}})],
    )
    assert zc.create_deposition(None)["id"] == 1
    assert zc.create_deposition({"title": "T"})["id"] == 2
    assert responses.calls[0].request.headers["Content-Type"] == "application/json"


@responses.activate
def test_get_update_and_delete_with_201_or_204(zc) -> None:
    responses.get(f"{DEPS}/7", json=dep(7))
    responses.put(
        f"{DEPS}/7",
        json=dep(7, title="N"),
        match=[matchers.json_params_matcher({"metadata": {"title": "N"}})],
    )
    responses.delete(f"{DEPS}/7", status=201)
    responses.delete(f"{DEPS}/8", status=204)
    assert zc.get_deposition("7")["id"] == 7
    assert zc.update_deposition("7", {"title": "N"})["title"] == "N"
    assert zc.delete_deposition("7") is None
    assert zc.delete_deposition("8") is None


@responses.activate
def test_publish_answers_the_deposition_on_202(zc) -> None:
    responses.post(
        f"{DEPS}/7/actions/publish",
        json=dep(7, submitted=True, state="done", doi="10.5072/z.7"),
        status=202,
    )
    assert zc.publish("7")["doi"] == "10.5072/z.7"


@responses.activate
def test_publish_timeout_rereads_and_does_not_publish_twice(zc) -> None:
    responses.post(f"{DEPS}/7/actions/publish", body=requests.ReadTimeout("slow"))
    responses.get(f"{DEPS}/7", json=dep(7, submitted=True, state="done", doi="10.5072/z.7"))
    assert zc.publish("7")["doi"] == "10.5072/z.7"
    posts = [c for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 1


@responses.activate
def test_publish_504_unpublished_is_sent_again(zc, sleeps) -> None:
    url = f"{DEPS}/7/actions/publish"
    responses.post(url, status=504, body="gateway timeout")
    responses.post(url, status=202, json=dep(7, submitted=True, state="done", doi="10.5072/z.7"))
    responses.get(f"{DEPS}/7", json=dep(7))
    assert zc.publish("7")["doi"] == "10.5072/z.7"
    assert [c.request.method for c in responses.calls] == ["POST", "GET", "POST"]
    assert sleeps == [0.5]


@responses.activate
def test_publish_that_never_happens_raises_the_last_fault(zc) -> None:
    responses.post(f"{DEPS}/7/actions/publish", body=requests.ConnectionError("reset"))
    responses.get(f"{DEPS}/7", json=dep(7))
    with pytest.raises(UpstreamUnavailable) as err:
        zc.publish("7")
    assert_no_token(err.value)
    assert len([c for c in responses.calls if c.request.method == "POST"]) == zc.attempts


@responses.activate
def test_publish_validation_error_is_not_retried(zc) -> None:
    responses.post(
        f"{DEPS}/7/actions/publish",
        status=400,
        json={
            "message": "Validation error.",
            "errors": [{"field": "files", "message": "Minimum one file"}],
        },
    )
    with pytest.raises(ZenodoValidationError) as err:
        zc.publish("7")
    assert err.value.errors == [("files", "Minimum one file")]
    assert len(responses.calls) == 1


@responses.activate
def test_429_waits_for_retry_after_then_succeeds(zc, sleeps) -> None:
    responses.get(
        f"{DEPS}/7", status=429, headers={"Retry-After": "3"}, json={"message": "slow down"}
    )
    responses.get(f"{DEPS}/7", json=dep(7))
    assert zc.get_deposition("7")["id"] == 7
    assert sleeps == [3.0]


@responses.activate
def test_429_on_create_is_retried_because_zenodo_did_nothing(zc, sleeps) -> None:
    responses.post(DEPS, status=429, headers={"Retry-After": "1"})
    responses.post(DEPS, status=201, json=dep(3))
    assert zc.create_deposition(None)["id"] == 3
    assert sleeps == [1.0]


@responses.activate
def test_429_with_a_wait_beyond_the_bound_is_answered_as_429(zc, sleeps) -> None:
    responses.get(f"{DEPS}/7", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(TooManyRequests) as err:
        zc.get_deposition("7")
    assert err.value.headers == {"Retry-After": "3600"}
    assert sleeps == []


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("5", 0) == 5.0
    assert retry_after("Thu, 01 Jan 1970 00:00:10 GMT", 4.0) == 6.0
    assert retry_after("soon", 0) is None
    assert retry_after(None, 0) is None


@responses.activate
def test_5xx_on_get_is_retried_with_backoff(zc, sleeps) -> None:
    responses.get(f"{DEPS}/7", status=502)
    responses.get(f"{DEPS}/7", status=503)
    responses.get(f"{DEPS}/7", json=dep(7))
    assert zc.get_deposition("7")["id"] == 7
    assert sleeps == [0.5, 1.0]


@responses.activate
def test_5xx_exhausted_becomes_503_or_504(zc, sleeps) -> None:
    responses.get(f"{DEPS}/7", status=503)
    with pytest.raises(UpstreamUnavailable):
        zc.get_deposition("7")
    assert len(sleeps) == zc.attempts - 1
    responses.replace(responses.GET, f"{DEPS}/7", status=504)
    with pytest.raises(UpstreamTimeout):
        zc.get_deposition("7")


@responses.activate
def test_5xx_on_create_is_not_retried(zc, sleeps) -> None:
    responses.post(DEPS, status=503)
    with pytest.raises(UpstreamUnavailable):
        zc.create_deposition(None)
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_connection_errors_retried_on_get_then_reported(zc, sleeps) -> None:
    responses.get(f"{DEPS}/7", body=requests.ConnectionError("refused"))
    responses.get(f"{DEPS}/7", json=dep(7))
    assert zc.get_deposition("7")["id"] == 7
    assert sleeps == [0.5]
    responses.replace(responses.GET, f"{DEPS}/7", body=requests.ConnectionError(f"refused {TOKEN}"))
    with pytest.raises(UpstreamUnavailable) as err:
        zc.get_deposition("7")
    assert_no_token(err.value)


@responses.activate
def test_read_timeout_on_get_becomes_504(zc) -> None:
    responses.get(f"{DEPS}/7", body=requests.ReadTimeout("slow"))
    with pytest.raises(UpstreamTimeout):
        zc.get_deposition("7")


def test_timeouts_are_separate_connect_and_read() -> None:
    client = ZenodoClient(Z, TOKEN, connect_timeout=3, read_timeout=900)
    assert client.timeout == (3, 900)


@responses.activate
def test_401_asks_for_reauthorization(zc) -> None:
    responses.get(f"{DEPS}/7", status=401, json={"message": f"bad token {TOKEN}"})
    with pytest.raises(Unauthorized) as err:
        zc.get_deposition("7")
    assert "re-authorize" in err.value.detail
    assert_no_token(err.value)


@responses.activate
def test_403_names_the_missing_scope(zc) -> None:
    responses.post(f"{DEPS}/7/actions/publish", status=403, json={"message": "forbidden"})
    with pytest.raises(Forbidden) as err:
        zc.publish("7")
    assert "deposit:actions" in err.value.detail and err.value.extra["scope"] == "deposit:actions"
    responses.post(DEPS, status=403, json={"message": "forbidden"})
    with pytest.raises(Forbidden) as err:
        zc.create_deposition(None)
    assert "deposit:write" in err.value.detail


@responses.activate
def test_404_and_500_without_json(zc) -> None:
    responses.get(f"{DEPS}/7", status=404, json={"message": "PID does not exist."})
    with pytest.raises(NotFound):
        zc.get_deposition("7")
    responses.post(DEPS, status=500, body="<html>oops</html>")
    with pytest.raises(UpstreamError) as err:
        zc.create_deposition(None)
    assert "500" in err.value.detail


@pytest.mark.parametrize(
    ("status", "error"),
    [(409, Conflict), (413, PayloadTooLarge), (405, UpstreamError), (415, UpstreamError)],
)
@responses.activate
def test_other_statuses_map_to_their_problems(zc, status, error) -> None:
    responses.put(f"{DEPS}/7", status=status, json={"message": "no"})
    with pytest.raises(error) as err:
        zc.update_deposition("7", {})
    assert err.value.status == {409: 409, 413: 413}.get(status, 502)
    assert len(responses.calls) == 1


@responses.activate
def test_both_validation_error_shapes_are_parsed(zc) -> None:
    responses.put(
        f"{DEPS}/7",
        status=400,
        json={
            "message": "Validation error.",
            "errors": [{"field": "metadata.creators.0.name", "message": "Missing"}],
        },
    )
    with pytest.raises(ZenodoValidationError) as err:
        zc.update_deposition("7", {})
    assert err.value.errors == [("metadata.creators.0.name", "Missing")]
    responses.replace(
        responses.PUT,
        f"{DEPS}/7",
        status=400,
        json={
            "status": 400,
            "message": "A validation error occurred.",
            "errors": [
                {"field": "metadata.title", "messages": ["Missing data.", "Too short."]},
                {"field": "metadata.rights", "messages": {"0": ["Unknown license."]}},
            ],
        },
    )
    with pytest.raises(ZenodoValidationError) as err:
        zc.update_deposition("7", {})
    assert err.value.errors == [
        ("metadata.title", "Missing data."),
        ("metadata.title", "Too short."),
        ("metadata.rights", "Unknown license."),
    ]


@responses.activate
def test_bucket_put_streams_with_content_length(zc, tmp_path) -> None:
    seen = {}

    def callback(request):
        seen["headers"] = dict(request.headers)
        seen["body_type"] = type(request.body).__name__
        return 201, {}, json.dumps({"key": "a%2Fb.csv", "size": 6, "checksum": "md5:x"})

    responses.add_callback(responses.PUT, f"{BUCKET}/a%252Fb.csv", callback=callback)
    body = ReplayBody(SizedMeter(iter([b"abc", b"def"]), 6), 6, window=8 * MiB)
    answer = zc.put_object(BUCKET, "a%2Fb.csv", body, 6)
    assert answer["size"] == 6
    assert seen["headers"]["Content-Length"] == "6"
    assert "Transfer-Encoding" not in seen["headers"]
    assert seen["headers"]["Content-Type"] == "application/octet-stream"
    assert seen["body_type"] == "ReplayBody"  # the stream object itself, never a joined buffer


class Received:
    """A bucket PUT callback that reads the streamed body, answering ``statuses`` in turn."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.bodies: list[bytes] = []

    def __call__(self, request):
        data = b"".join(request.body)
        self.bodies.append(data)
        status = self.statuses.pop(0) if self.statuses else 201
        checksum = "md5:" + hashlib.md5(data).hexdigest()
        headers = {"Retry-After": "3"} if status == 429 else {}
        return status, headers, json.dumps({"key": "k", "size": len(data), "checksum": checksum})


@responses.activate
def test_bucket_put_within_the_window_is_sent_again_whole(zc, sleeps) -> None:
    """429 (its Retry-After waited) and 503: the body is replayed from the spool."""
    received = Received(429, 503)
    responses.add_callback(responses.PUT, f"{BUCKET}/k", callback=received)
    chunks = [b"a" * 1000, b"b" * 1000, b"c" * 10]
    body = ReplayBody(SizedMeter(iter(chunks), 2010), 2010, window=8 * MiB)
    assert zc.put_object(BUCKET, "k", body, 2010)["size"] == 2010
    assert received.bodies == [b"".join(chunks)] * 3
    assert sleeps[0] == 3.0 and len(sleeps) == 2
    assert body.md5 == hashlib.md5(b"".join(chunks)).hexdigest()  # hashed once, not thrice


@responses.activate
def test_bucket_put_past_the_window_is_not_retried(zc, sleeps) -> None:
    responses.add_callback(responses.PUT, f"{BUCKET}/k", callback=Received(503))
    body = ReplayBody(SizedMeter(iter([b"x" * 10, b"y" * 10]), 20), 20, window=10)
    with pytest.raises(UpstreamUnavailable):
        zc.put_object(BUCKET, "k", body, 20)
    assert len(responses.calls) == 1 and sleeps == [] and not body.replayable()


@responses.activate
def test_bucket_list_delete_and_classic_files(zc) -> None:
    responses.get(BUCKET, json={"contents": [{"key": "k", "size": 1, "checksum": "md5:c"}]})
    responses.delete(f"{BUCKET}/k", status=204)
    responses.get(
        f"{DEPS}/7/files", json=[{"id": "f1", "filename": "k", "filesize": 1, "checksum": "c"}]
    )
    responses.put(
        f"{DEPS}/7/files/f1",
        json={"id": "f1", "filename": "n", "filesize": 1, "checksum": "c"},
        match=[matchers.json_params_matcher({"filename": "n"})],
    )
    assert zc.list_bucket(BUCKET)[0]["key"] == "k"
    assert zc.delete_object(BUCKET, "k") is None
    assert zc.list_files("7")[0]["id"] == "f1"
    assert zc.rename_file("7", "f1", "n")["filename"] == "n"


@responses.activate
def test_links_to_other_hosts_are_never_followed(zc) -> None:
    with pytest.raises(UpstreamError):
        zc.list_bucket("http://evil.test/api/files/b")
    assert len(responses.calls) == 0


@responses.activate
def test_ping_without_token_sends_no_authorization() -> None:
    responses.get(DEPS, status=401)
    assert ZenodoClient(Z, None).ping() == 401
    assert "Authorization" not in responses.calls[0].request.headers


def test_repr_hides_the_token(zc) -> None:
    assert TOKEN not in repr(zc) and TOKEN not in str(vars(zc).get("base_url"))


def test_every_error_class_used_is_a_connector_error() -> None:
    assert issubclass(ZenodoValidationError, ConnectorError)
