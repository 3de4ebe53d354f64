"""The crate a Zenodo record carries, what a publish needs, and the tags of created drafts.

Boundary: JSON in, JSON out; no HTTP. ``common.backends.zenodo`` writes
``ro-crate-metadata.json`` into the draft's bucket on PATCH (the crate as the caller gave
it) and again just before publish with a ``File`` entity per deposited key (size, format,
the MD5 Zenodo confirmed) -- at publish because only then is the file list final, on PATCH
so that a draft already carries the caller's crate. Between those two moments uploads do
not rewrite it: that would double the requests per file under Zenodo's rate limit.

Publish refuses a record without creators or without a licence (``publish_problems``):
Zenodo's own default for an open record would be CC-BY-4.0, a licence nobody chose, and a
DOI cannot be withdrawn. Drafts may stay partial.

Created drafts carry a line ``rds-request: <tag>`` in ``notes`` until the first PATCH
replaces their metadata (or the publish strips it): a create whose answer was lost, or a
caller's retry with the same ``Idempotency-Key``, finds its draft by that tag instead of
making a second one. The crate reader ignores note lines it does not know, so the tag never
reaches a crate.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import uuid
from typing import Any
from urllib.parse import quote

from common.errors import BadRequest
from common.rocrate.zenodo import UNKNOWN_CREATOR

Json = dict[str, Any]
CRATE_KEY = "ro-crate-metadata.json"
TAG_NOTE = "rds-request: "
_PROFILE = "https://w3id.org/ro/crate/1.1"


def create_tag(address: str, user: str, idempotency_key: str | None) -> str:
    """A draft's tag: from the caller's key (per instance and RDS user), else a fresh one."""
    if not idempotency_key:
        return uuid.uuid4().hex
    seed = f"{address}\n{user}\n{idempotency_key}".encode()
    return hashlib.sha256(seed).hexdigest()[:32]


def tagged(metadata: Json | None, tag: str) -> Json:
    """``metadata`` with the create tag as a line of its notes."""
    out = dict(metadata or {})
    notes = [line for line in str(out.get("notes") or "").splitlines() if line.strip()]
    out["notes"] = "\n".join([*notes, TAG_NOTE + tag])
    return out


def tag_of(metadata: Any) -> str | None:
    notes = metadata.get("notes") if isinstance(metadata, dict) else None
    for line in str(notes or "").splitlines():
        if line.startswith(TAG_NOTE):
            return line[len(TAG_NOTE) :].strip()
    return None


def untagged(metadata: Json) -> Json:
    """``metadata`` without the tag line (and without ``notes`` if nothing else was there)."""
    out = dict(metadata)
    lines = [ln for ln in str(out.get("notes") or "").splitlines() if not ln.startswith(TAG_NOTE)]
    if any(ln.strip() for ln in lines):
        out["notes"] = "\n".join(lines)
    else:
        out.pop("notes", None)
    return out


def publish_problems(metadata: Json) -> None:
    """Refuse (400, naming the RO-Crate property) what the connector will not publish."""
    names = [
        str(c.get("name") or "").strip()
        for c in metadata.get("creators") or []
        if isinstance(c, dict)
    ]
    if not [n for n in names if n and n != UNKNOWN_CREATOR]:
        raise BadRequest(
            "creator is missing: a Zenodo record is published with its creators and the "
            "connector invents none; give the crate's root a creator (Person or Organization) "
            "and PATCH it before publishing",
            field="creator",
        )
    if metadata.get("access_right", "open") in ("open", "embargoed") and not metadata.get(
        "license"
    ):
        raise BadRequest(
            "license is missing: an open Zenodo record needs a licence and the connector "
            "chooses none (Zenodo's form would suggest CC-BY-4.0); give the crate's root a "
            "license such as CC-BY-4.0 or CC0-1.0 and PATCH it before publishing",
            field="license",
        )


def parse_crate(data: bytes | None) -> Json | None:
    """A crate document from a file's bytes, or ``None`` if it is not one."""
    if not data:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("@graph"), list):
        return None
    return doc


def crate_bytes(crate: Json) -> bytes:
    return json.dumps(crate, ensure_ascii=False, indent=1).encode("utf-8")


def file_id(path: str) -> str:
    return quote(path, safe="/")


def with_files(crate: Json, entries: list[Json]) -> Json:
    """``crate`` with one ``File`` entity per entry (``filename``, ``size``, ``checksum``,
    optional ``mimetype``), each listed in the root's ``hasPart``; other entities stay."""
    graph = [dict(e) for e in crate.get("@graph") or [] if isinstance(e, dict)]
    by_id = {str(e.get("@id")): e for e in graph}
    root = _root(graph)
    parts = root.get("hasPart")
    parts = parts if isinstance(parts, list) else [parts] if parts else []
    listed = {p.get("@id") if isinstance(p, dict) else p for p in parts}
    for entry in entries:
        path = str(entry["filename"])
        if path == CRATE_KEY:
            continue
        ident = file_id(path)
        entity = by_id.get(ident)
        if entity is None:
            entity = {"@id": ident, "@type": "File", "name": path}
            graph.append(entity)
            by_id[ident] = entity
        entity["contentSize"] = str(entry["size"])
        entity["encodingFormat"] = (
            entry.get("mimetype") or mimetypes.guess_type(path)[0] or "application/octet-stream"
        )
        md5 = str(entry.get("checksum") or "").removeprefix("md5:")
        if md5:
            entity["identifier"] = {"@type": "PropertyValue", "propertyID": "md5", "value": md5}
        if ident not in listed:
            parts.append({"@id": ident})
            listed.add(ident)
    if parts:
        root["hasPart"] = parts
    return {**crate, "@graph": graph}


def _root(graph: list[Json]) -> Json:
    """The root entity (the descriptor's ``about``), made if the crate has none."""
    descriptor = next((e for e in graph if e.get("@id") == CRATE_KEY), None)
    if descriptor is None:
        descriptor = {
            "@id": CRATE_KEY,
            "@type": "CreativeWork",
            "conformsTo": {"@id": _PROFILE},
            "about": {"@id": "./"},
        }
        graph.insert(0, descriptor)
    about = descriptor.get("about")
    root_id = about.get("@id") if isinstance(about, dict) else about or "./"
    root = next((e for e in graph if e.get("@id") == root_id), None)
    if root is None:
        root = {"@id": root_id, "@type": "Dataset"}
        graph.append(root)
    return root
