"""Folders over an archive's file cap: the planning rule and the streamed zip (common/bundle.py)."""

from __future__ import annotations

import hashlib
import io
import os
import random
import zipfile
from collections.abc import Callable, Iterable

import pytest
import zipstream

from common.backends import zenodo
from common.bundle import ROOT_BUNDLE, Bundle, Member, Plan, ZipBundle, plan, possible_outputs
from common.errors import Conflict, UpstreamError
from common.passive_source import total_size


def names_of(p: Plan) -> dict[str, tuple[str, ...]]:
    return {b.name: b.members for b in p.bundles}


# -- the rule ----------------------------------------------------------------------------
def test_a_folder_that_fits_stays_loose_and_no_cap_never_zips() -> None:
    files = [f"a/{i}" for i in range(5)]
    assert plan(files, 5) == Plan(tuple(sorted(files)))
    assert plan([f"f{i}" for i in range(10_000)], None).bundles == ()


def test_deepest_folders_first_the_fullest_first_until_it_fits() -> None:
    files = [
        *(f"x/deep/{i}" for i in range(3)),  # depth 2, 3 entries
        *(f"y/deeper/{i}" for i in range(5)),  # depth 2, 5 entries
        *(f"z/{i}" for i in range(6)),  # depth 1, 6 entries
        "top.txt",
    ]
    # 15 files; 11 allowed: y/deeper (fullest at depth 2) saves 4 -> 11
    got = plan(files, 11)
    assert names_of(got) == {"y/deeper.zip": tuple(f"y/deeper/{i}" for i in range(5))}
    assert got.count == 11
    # 8 allowed: then x/deep (saves 2 -> 9), then depth 1: z (6 entries) -> 4
    got = plan(files, 8)
    assert sorted(names_of(got)) == ["x/deep.zip", "y/deeper.zip", "z.zip"]
    assert got.loose == ("top.txt",) and got.count == 4


def test_a_parent_absorbs_its_zipped_subfolders_and_entries_are_relative_to_it() -> None:
    files = [*(f"a/b/{i}" for i in range(4)), *(f"a/c/{i}" for i in range(4)), "a/r", "t"]
    got = plan(files, 2)
    (bundle,) = got.bundles
    assert bundle.name == "a.zip" and bundle.folder == "a"
    assert bundle.members == tuple(sorted(f for f in files if f.startswith("a/")))
    assert [bundle.entry(m) for m in bundle.members][:2] == ["b/0", "b/1"]
    assert got.loose == ("t",)


def test_a_folder_of_one_entry_is_never_zipped() -> None:
    files = [f"one{i}/only.txt" for i in range(5)] + [f"many/{i}" for i in range(5)]
    got = plan(files, 6)
    assert sorted(names_of(got)) == ["many.zip"]


def test_top_level_files_go_into_files_zip_only_when_nothing_else_fits() -> None:
    files = [f"f{i:03}.txt" for i in range(150)] + ["ro-crate-metadata.json", "d/1", "d/2"]
    got = plan(files, 100)
    assert sorted(names_of(got)) == ["_files.zip", "d.zip"]
    assert got.loose == ("ro-crate-metadata.json",)  # the crate stays readable
    assert names_of(got)[ROOT_BUNDLE] == tuple(f"f{i:03}.txt" for i in range(150))
    assert Bundle(ROOT_BUNDLE, "", ("x",)).entry("f001.txt") == "f001.txt"


def test_a_zip_name_taken_by_a_file_is_not_used() -> None:
    files = ["a.zip", *(f"a/{i}" for i in range(5)), *(f"b/a/{i}" for i in range(3))]
    got = plan(files, 7)
    assert sorted(names_of(got)) == ["b/a.zip"]  # a/ is not zipped: a.zip is a file's name
    assert "a.zip" in got.loose and "a/0" in got.loose
    with pytest.raises(Conflict):
        plan(files, 4)
    folders = [*(f"a/{i}" for i in range(5)), *(f"a.zip/{i}" for i in range(5))]
    assert sorted(names_of(plan(folders, 6))) == ["a.zip.zip"]  # a.zip/ is a folder's path


def test_what_cannot_fit_even_zipped_is_refused_naming_the_counts() -> None:
    files = [f"d{i:03}/{n}" for i in range(101) for n in "ab"]
    with pytest.raises(Conflict) as err:
        plan(files, 100)
    assert err.value.field == "folder" and err.value.status == 409
    assert "202 files" in err.value.detail and "101 entries" in err.value.detail
    with pytest.raises(Conflict):
        plan(["a", "b"], 0)


def test_the_plan_is_deterministic_whatever_the_listing_order() -> None:
    files = [f"s{s}/d{d}/f{f}" for s in range(4) for d in range(6) for f in range(9)]
    files += [f"top{i}" for i in range(7)]
    first = plan(files, 40)
    for seed in range(5):
        shuffled = files[:]
        random.Random(seed).shuffle(shuffled)
        assert plan(shuffled, 40) == first
    assert first.count <= 40


def test_possible_outputs_name_every_file_and_every_zip_a_plan_could_make() -> None:
    assert possible_outputs(["a/b/c.txt", "d.txt"]) == {
        "a/b/c.txt",
        "d.txt",
        "a.zip",
        "a/b.zip",
        ROOT_BUNDLE,
    }


# -- the zip -----------------------------------------------------------------------------
class Opened:
    """Members' sources that record how many are open at once."""

    def __init__(self) -> None:
        self.open = 0
        self.most = 0
        self.opened: list[str] = []

    def member(self, entry: str, data: bytes, size: int | None = None) -> Member:
        def run() -> tuple[Iterable[bytes], Callable[[], None]]:
            self.open += 1
            self.most = max(self.most, self.open)
            self.opened.append(entry)

            def close() -> None:
                self.open -= 1

            return (data[i : i + 65536] for i in range(0, len(data), 65536)), close

        return Member(entry, len(data) if size is None else size, run)


FILES = {
    "a.csv": b"depth,ph\n" * 100,
    "empty": b"",
    "sub/b.bin": os.urandom(1024 * 1024 + 7),
    "sub/deeper/naïve 文件.txt": "grüße".encode(),
}


def zipped(files: dict[str, bytes], opened: Opened | None = None) -> tuple[ZipBundle, bytes]:
    opened = opened or Opened()
    bundle = ZipBundle([opened.member(n, d) for n, d in files.items()])
    announced = len(bundle)
    data = b"".join(bundle)
    assert announced == len(data)
    return bundle, data


def test_the_zip_opens_every_entry_byte_exact_crc_checked_length_as_announced() -> None:
    opened = Opened()
    bundle, data = zipped(FILES, opened)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None  # every entry's CRC-32 matches its bytes
    assert archive.namelist() == list(FILES)
    for info in archive.infolist():
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert archive.read(info) == FILES[info.filename]
    assert [m.md5 for m in bundle.members] == [hashlib.md5(d).hexdigest() for d in FILES.values()]
    assert opened.most == 1 and opened.open == 0  # one source open at a time, all closed


def test_the_same_files_give_the_same_bytes() -> None:
    assert zipped(FILES)[1] == zipped(FILES)[1]


def test_zip64_records_are_written_where_sizes_or_offsets_need_them(monkeypatch) -> None:
    # lower the library's 4 GiB limit so small entries need zip64, as big ones would
    monkeypatch.setattr(zipstream.ng, "ZIP64_LIMIT", 1000)
    files = {"big": os.urandom(5000), "after": b"x" * 10, "small": b"y"}
    _, data = zipped(files)
    assert b"PK\x06\x06" in data  # the zip64 end of central directory record
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    assert {n: archive.read(n) for n in archive.namelist()} == files


def test_a_source_that_changed_size_breaks_the_zip_naming_it() -> None:
    opened = Opened()
    short = ZipBundle([opened.member("a", b"12345", size=6)])
    with pytest.raises(UpstreamError, match="'a' changed size"):
        b"".join(short)
    longer = ZipBundle([opened.member("b", b"1234567", size=6)])
    with pytest.raises(UpstreamError, match="'b' changed size"):
        b"".join(longer)
    assert opened.open == 0


# -- sizes -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "content_range", "length", "size"),
    [
        (206, "bytes 0-0/12345", 1, 12345),
        (200, None, 12345, 12345),  # the range was ignored: the whole file's length
        (416, "bytes */0", None, 0),  # an empty file
        (206, "bytes 0-0/*", 1, None),
        (200, None, None, None),
    ],
)
def test_the_size_comes_from_a_one_byte_range_answer(status, content_range, length, size) -> None:
    assert total_size(status, content_range, length) == size


# -- active mode -------------------------------------------------------------------------
def test_active_uploads_over_zenodos_cap_are_told_how_to_send_more() -> None:
    from common.backends.zenodo_upload import check_limits

    present = {f"k{i}": 1 for i in range(zenodo.MAX_FILES)}
    with pytest.raises(Conflict) as err:
        check_limits(
            "one-more.txt",
            "one-more.txt",
            1,
            present,
            crate_key=zenodo.CRATE_KEY,
            max_files=zenodo.MAX_FILES,
            max_bytes=zenodo.MAX_RECORD_BYTES,
        )
    assert err.value.status == 409 and err.value.field == "file"
    assert "passive transfer" in err.value.detail and "fileTransferArchive" in err.value.detail
