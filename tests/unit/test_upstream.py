"""The one outside-answer table: every status the clients see maps to one error class."""

from __future__ import annotations

import pytest
import requests
import responses

from common.backends.webdav.client import STORAGE
from common.errors import (
    Conflict,
    Forbidden,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from common.passive_source import StorageClient
from common.port_service import PORT
from common.upstream import STATUS_ERRORS, transport_errors
from common.zenodo_client import ZENODO

# (status, webdav, zenodo, passive, Port service): what each client answers (as before the
# table, but Zenodo's 412 and 423, now Conflict like everywhere else)
SEEN = [
    (400, UpstreamError, None, UpstreamError, UpstreamError),
    (401, Unauthorized, Unauthorized, Unauthorized, Unauthorized),
    (403, Forbidden, Forbidden, Unauthorized, Unauthorized),
    (404, NotFound, NotFound, NotFound, Unauthorized),
    (409, Conflict, Conflict, UpstreamError, UpstreamError),
    (412, Conflict, Conflict, UpstreamError, UpstreamError),
    (413, PayloadTooLarge, PayloadTooLarge, UpstreamError, UpstreamError),
    (423, Conflict, Conflict, UpstreamError, UpstreamError),
    (429, TooManyRequests, TooManyRequests, UpstreamError, UpstreamUnavailable),
    (500, UpstreamError, UpstreamError, UpstreamError, UpstreamError),
    (502, UpstreamUnavailable, UpstreamUnavailable, UpstreamError, UpstreamUnavailable),
    (503, UpstreamUnavailable, UpstreamUnavailable, UpstreamError, UpstreamUnavailable),
    (504, UpstreamTimeout, UpstreamTimeout, UpstreamError, UpstreamUnavailable),
    (507, InsufficientStorage, UpstreamError, UpstreamError, UpstreamError),
]


@pytest.mark.parametrize(("status", "webdav", "zenodo", "passive", "port"), SEEN)
def test_each_status_maps_to_one_error_per_client(status, webdav, zenodo, passive, port) -> None:
    words = {"what": "/a", "message": "m", "scope": "s", "service": "port-x", "servicename": "x"}
    assert type(STORAGE.error(status, **words)) is webdav
    if zenodo is not None:  # Zenodo's 400 is its validation error, built by the client
        assert type(ZENODO.error(status, **words)) is zenodo
    assert type(StorageClient.ANSWERS.error(status, **words)) is passive
    assert type(PORT.error(status, **words)) is port


def test_the_table_itself_holds_the_shared_meanings() -> None:
    assert STATUS_ERRORS[503] is UpstreamUnavailable and STATUS_ERRORS[504] is UpstreamTimeout
    kinds = [kind for kind, _ in transport_errors()]
    assert kinds.index(requests.Timeout) < kinds.index(requests.RequestException)


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (requests.ConnectTimeout(), UpstreamTimeout),
        (requests.ReadTimeout(), UpstreamTimeout),
        (requests.ConnectionError(), UpstreamUnavailable),
        (requests.exceptions.ChunkedEncodingError(), UpstreamUnavailable),
        (requests.exceptions.ContentDecodingError(), UpstreamError),
    ],
)
def test_transport_failures_map_by_the_one_table(exc, cls) -> None:
    for service in (STORAGE, ZENODO):
        assert type(service.transport(exc, method="GET")) is cls


def test_retry_after_rides_along_only_when_valid_and_fields_are_kept() -> None:
    err = STORAGE.error(429, headers={"Retry-After": "30"})
    assert err.headers == {"Retry-After": "30"}
    assert STORAGE.error(429, headers={"Retry-After": "soon"}).headers == {}
    assert STORAGE.error(404, what="/a", field="newfilepath").field == "newfilepath"
    assert STORAGE.error(401).field == "userId"
    forbidden = ZENODO.error(403, message="no", scope="deposit:actions", extra={"scope": "x"})
    assert "deposit:actions" in forbidden.detail and forbidden.extra == {"scope": "x"}


@responses.activate
def test_passive_storage_client_retries_a_503_then_asks_in_the_session_form() -> None:
    sleeps: list[float] = []
    url = "http://layer1-port-x/storage/folder"
    responses.get(url, status=503, headers={"Retry-After": "2"})
    responses.get(url, status=503)
    responses.get(url, status=503)
    responses.get(url, json={"files": ["/a"]})
    client = StorageClient(
        "http://layer1-port-x",
        "alice",
        service="port-x",
        session=requests.Session(),
        timeout=(1, 1),
        session_user_id=lambda: "port-x://alice:tok",
        sleep=sleeps.append,
    )
    assert client.list_folder("/") == ["/a"]
    assert sleeps == [2.0, 1.0]  # Retry-After, then the back-off; then the session form
    assert [c.request.body.count(b"tok") for c in responses.calls] == [0, 0, 0, 1]
