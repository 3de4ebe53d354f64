"""The request body on its own: fields, file parts, the shared field budget, draining; and
identity resolved apart from it."""

from __future__ import annotations

import io

import pytest
import requests
from flask import Request, Response
from werkzeug.test import EnvironBuilder

from common.body import Body
from common.errors import BadRequest, PayloadTooLarge, Unauthorized
from common.identity import resolve_identity


def request_of(body: bytes, content_type: str, query: str = "") -> Request:
    builder = EnvironBuilder(
        method="POST", path="/x", query_string=query, data=body, content_type=content_type
    )
    return Request(builder.get_environ())


def multipart(fields: dict, files: dict) -> Request:
    prepared = requests.Request("POST", "http://x/", data=fields, files=files).prepare()
    return request_of(prepared.body, prepared.headers["Content-Type"])


def test_json_fields_over_the_query_string() -> None:
    body = Body(request_of(b'{"a": 1}', "application/json", "a=0&b=2"), 1024)
    assert body.fields() == {"a": 1, "b": "2"}
    assert not body.pending


def test_fields_before_and_after_the_file_part_and_the_part_streamed() -> None:
    body = Body(multipart({"userId": "u"}, {"file": ("a.bin", io.BytesIO(b"xyz"))}), 4096)
    assert body.fields() == {"userId": "u"}
    parts = list(body.files())
    assert [(p.name, p.filename) for p in parts] == [("file", "a.bin")]
    assert not body.pending


def test_file_part_chunks_are_the_bytes() -> None:
    body = Body(multipart({"a": "1"}, {"file": ("a.bin", io.BytesIO(b"xyz" * 1000))}), 4096)
    part = next(body.files())
    assert b"".join(part.chunks) == b"xyz" * 1000
    assert next(body.files(), None) is None


def test_all_text_fields_share_one_budget() -> None:
    body = Body(multipart({"a": "x" * 700, "b": "y" * 700}, {}), 1024)
    with pytest.raises(PayloadTooLarge):
        body.fields()


def test_a_non_multipart_body_has_no_files_and_bad_json_raises() -> None:
    assert list(Body(request_of(b"{}", "application/json"), 1024).files()) == []
    with pytest.raises(BadRequest, match="JSON"):
        Body(request_of(b"{nope", "application/json"), 1024).fields()


def test_finish_reads_what_is_left() -> None:
    body = Body(multipart({"userId": "u"}, {"file": ("a.bin", io.BytesIO(b"z" * 10))}), 4096)
    body.fields()
    assert body.pending
    response = Response("ok")
    body.finish(response)
    assert not body.pending and "Connection" not in response.headers


def test_identity_looks_up_a_token_only_when_the_backend_needs_one() -> None:
    asked: list[str] = []

    def lookup(user: str) -> str:
        asked.append(user)
        return "looked-up"

    kw = {"servicename": "port-x", "lookup": lookup}
    assert resolve_identity("bob", None, needs_token=False, **kw).token is None
    assert resolve_identity("port-x://bob:t", None, needs_token=True, **kw).token == "t"
    assert resolve_identity("bob", None, needs_token=True, **kw).token == "looked-up"
    assert asked == ["bob"]
    with pytest.raises(Unauthorized):
        resolve_identity("bob", None, needs_token=True, servicename="port-x", lookup=lambda u: None)


def test_the_local_backend_and_metadata_do_not_reach_up_to_the_web_layer() -> None:
    import ast
    from pathlib import Path

    common = Path(__file__).resolve().parents[2] / "common"
    web = {"flask", "werkzeug", "common.http", "common.body", "common.runtime"}
    for path in (common / "metadata.py", common / "backends" / "local.py"):
        tree = ast.parse(path.read_text("utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not imported & web, path
