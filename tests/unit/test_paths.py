"""Paths that could escape a user's root, or that no storage would keep, are 400s."""

from __future__ import annotations

import pytest

from common.errors import BadRequest
from common.paths import relative_path, storage_path


@pytest.mark.parametrize(
    "good", ["a.csv", "a/b/c.csv", "Übersicht/naïve 文件.txt", "x..y", ".hidden"]
)
def test_plain_relative_paths_pass_unchanged(good) -> None:
    assert relative_path(good, "filename") == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a//b",
        "./a",
        "a\\..\\b",
        "C:x",
        "a\x00b",
        "a\nb",
        "a\x1bb",
        "x" * 256,
        "a/" * 2100 + "b",
        7,
    ],
)
def test_hostile_paths_are_400_naming_the_field(bad) -> None:
    with pytest.raises(BadRequest) as err:
        relative_path(bad, "filename")
    assert err.value.field == "filename"


def test_storage_paths_are_absolute_and_slash_is_the_root() -> None:
    assert storage_path("/") == ""
    assert storage_path("/a/b/") == "a/b"
    assert storage_path("a/b.csv") == "a/b.csv"
    for bad in ("//etc", "/a/../..", None, ""):
        with pytest.raises(BadRequest):
            storage_path(bad)
