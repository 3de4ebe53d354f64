"""Folders over an archive's file cap: which subfolders become ZIP files, and their bytes.

Boundary: pure planning (names in, a ``Plan`` out) and a streamed, uncompressed zip of
known length; no HTTP and no archive here -- ``common.passive`` probes the sizes, opens the
downloads and stores the zips.

The rule (docs/passive.md, "Folders over the file cap"): with more files than the record
may take, folders are bundled **deepest first**; among folders of one depth, the one that
holds the most entries (loose files plus its not-bundled subfolders) first, then by path;
a folder whose bundle would save nothing (one entry) is left alone. Bundling stops as soon
as the count fits. A folder goes whole into ``<folder path>.zip`` beside it, its entries
named relative to it (a bundled subfolder is absorbed into its parent's zip when the parent
is bundled too). Only when every subfolder of the top level is bundled and it still does
not fit are the top level's own loose files bundled into ``_files.zip`` (the crate file
``ro-crate-metadata.json`` stays loose); if even that does not fit, the pull is refused
(409) naming the counts. A folder whose zip name is already a source file's or folder's
path (``a/`` beside ``a.zip``), or a top-level folder ``_files``, is never bundled itself.

The zip: ZIP_STORED, entries in path order, each entry's CRC-32 computed as its bytes pass,
zip64 records where sizes or offsets need them, and the exact length known from the sizes
before the first byte. Timestamps are pinned (1980-01-01 00:00), so the same files give the
same bytes and a re-run finds the same size and MD5 in the record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import zipstream  # zipstream-ng

from common.errors import Conflict, UpstreamError

ROOT_BUNDLE = "_files.zip"
CRATE = "ro-crate-metadata.json"
#: DOS time 00:00:00, DOS date 1980-01-01 (the zip format's epoch), little endian
_PINNED_TIME = bytes((0, 0, 0x21, 0))
_LOCAL_HEADER = b"PK\x03\x04"
_CENTRAL_HEADER = b"PK\x01\x02"


@dataclass(frozen=True)
class Bundle:
    """One zip of a plan: its path in the record, the folder it holds, the source files."""

    name: str
    folder: str  # '' for the top level's loose files
    members: tuple[str, ...]  # source paths relative to the pulled folder, sorted

    def entry(self, member: str) -> str:
        """The name of ``member`` inside the zip (relative to the bundled folder)."""
        return member[len(self.folder) + 1 :] if self.folder else member


@dataclass(frozen=True)
class Plan:
    """What a pull stores: loose files under their own names, and bundles."""

    loose: tuple[str, ...]
    bundles: tuple[Bundle, ...] = ()

    @property
    def count(self) -> int:
        """Entries the record receives."""
        return len(self.loose) + len(self.bundles)


def possible_outputs(names: Iterable[str]) -> set[str]:
    """Every name a plan of ``names`` could give the record (its files and every bundle
    name), so a caller can tell the record's other files apart before planning."""
    out = set(names)
    for name in list(out):
        parts = name.split("/")
        out.update("/".join(parts[:i]) + ".zip" for i in range(1, len(parts)))
    out.add(ROOT_BUNDLE)
    return out


def plan(names: Iterable[str], budget: int | None) -> Plan:
    """Which folders become zips so that ``names`` take at most ``budget`` entries.

    ``budget`` is ``None`` for an archive without a cap. Deterministic: the same names and
    budget always give the same plan. A ``Conflict`` (409, ``folder``) when no plan fits.
    """
    files = sorted(set(names))
    if budget is None or len(files) <= budget:
        return Plan(tuple(files))
    children: dict[str, set[str]] = {"": set()}
    direct: dict[str, int] = {"": 0}
    for name in files:
        parts = name.split("/")
        for i in range(1, len(parts)):
            folder, parent = "/".join(parts[:i]), "/".join(parts[: i - 1])
            children.setdefault(folder, set())
            direct.setdefault(folder, 0)
            children[parent].add(folder)
        direct["/".join(parts[:-1])] += 1
    taken = set(files)
    bundled: set[str] = set()
    entries: dict[str, int] = {}

    def count(folder: str) -> int:  # entries of a folder not bundled itself
        return direct[folder] + sum(1 if c in bundled else entries[c] for c in children[folder])

    total = len(files)
    by_depth: dict[int, list[str]] = {}
    for folder in children:
        if folder:
            by_depth.setdefault(folder.count("/") + 1, []).append(folder)
    for depth in sorted(by_depth, reverse=True):
        for folder in by_depth[depth]:
            entries[folder] = count(folder)
        level = sorted(by_depth[depth], key=lambda f: (-entries[f], f))
        for folder in level:
            if total <= budget:
                break
            name = folder + ".zip"
            if entries[folder] < 2 or name in taken or name in children or name == ROOT_BUNDLE:
                continue
            bundled.add(folder)
            total -= entries[folder] - 1
    top_loose = [n for n in files if "/" not in n and n != CRATE]
    root_bundle = total > budget and len(top_loose) >= 2
    if root_bundle:
        total -= len(top_loose) - 1
    if total > budget:
        raise Conflict(
            f"the folder holds {len(files)} files and the record can take {budget} more; "
            f"even with every subfolder zipped it would need {total} entries (the top level "
            f"has {len(children[''])} folders); pull its subfolders one by one",
            field="folder",
        )
    outer = sorted(f for f in bundled if not any(_below(f, g) for g in bundled))
    bundles = [Bundle(f + ".zip", f, tuple(n for n in files if _below(n, f))) for f in outer]
    if root_bundle:
        bundles.append(Bundle(ROOT_BUNDLE, "", tuple(top_loose)))
    inside = {m for b in bundles for m in b.members}
    return Plan(tuple(n for n in files if n not in inside), tuple(bundles))


def _below(path: str, folder: str) -> bool:
    return path.startswith(folder + "/")


@dataclass
class Member:
    """One file on its way into a zip: its entry name, exact size, and how to open it."""

    entry: str
    size: int
    open: Callable[[], tuple[Iterable[bytes], Callable[[], None] | None]] = field(repr=False)
    md5: str | None = None  # set once its bytes have passed


class ZipBundle:
    """A zip of ``members`` (in the order given) streamed with its length known up front.

    ``len()`` is the exact number of bytes ``iter()`` yields. Each member is opened only
    when the stream reaches it and closed when its bytes are through, so one chunk of one
    member is in memory at a time. A member that yields another length than announced is
    an ``UpstreamError`` (the source changed since it was measured), before the zip ends.
    """

    def __init__(self, members: list[Member]) -> None:
        self.members = members
        self._zip = zipstream.ZipStream(compress_type=zipstream.ZIP_STORED, sized=True)
        for member in members:
            self._zip.add(self._chunks(member), member.entry, size=member.size)

    def __len__(self) -> int:
        return len(self._zip)

    def __iter__(self) -> Iterator[bytes]:
        # zipstream-ng stamps every entry with the current time and has no way to set it
        # (pR0Ps/zipstream-ng#27), so the time and date fields of each local header (the
        # first piece of every entry) and of each central-directory header (the footer's
        # pieces) are overwritten with a fixed value on the way. Both live at fixed
        # offsets of records the zip format defines; the signature check makes a change
        # of the library's framing fail loudly instead of producing drifting bytes.
        while True:
            first = True
            produced = False
            for piece in self._zip.file():
                produced = True
                if first:
                    yield _pinned(piece, _LOCAL_HEADER, 10)
                    first = False
                else:
                    yield piece
            if not produced:
                break
        for piece in self._zip.footer():
            if piece.startswith(_CENTRAL_HEADER):
                yield _pinned(piece, _CENTRAL_HEADER, 12)
            else:
                yield piece

    @staticmethod
    def _chunks(member: Member) -> Iterator[bytes]:
        chunks, close = member.open()
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        try:
            for chunk in chunks:
                size += len(chunk)
                if size > member.size:
                    break
                md5.update(chunk)
                yield chunk
        finally:
            if close:
                close()
        if size != member.size:
            raise UpstreamError(
                f"{member.entry!r} changed size while it was zipped (measured {member.size} "
                "bytes); pull again",
                field="folder",
            )
        member.md5 = md5.hexdigest()


def _pinned(piece: bytes, signature: bytes, offset: int) -> bytes:
    if not piece.startswith(signature):
        raise RuntimeError("zipstream-ng framed a zip record differently than expected")
    return piece[:offset] + _PINNED_TIME + piece[offset + 4 :]
