"""Metadata dicts older RDS callers send instead of an RO-Crate, mapped to one.

Layer 2's contract tests (and the callers built on them) PATCH a DataCite-style dict
(``Titles``, ``Creators``, ``PublicationYear``, ``Publisher``, ``ResourceType``,
``Identifiers`` ...); the old port_zenodo also took a flat Zenodo-style dict (``title``,
``creators``, ``description``, ``upload_type`` ...) and silently dropped what it did not
know. Here each form is mapped to Zenodo-style metadata and from there to an RO-Crate
(``rocrate.zenodo_to_crate``, the one reverse mapping we keep), so title and creators reach
the archive like any crate's. A key neither form knows is a 400 that names it: a 2xx that
drops what the caller sent would be a lie.
"""

from __future__ import annotations

from typing import Any

from common.errors import BadRequest
from common.rocrate import UPLOAD_TYPES, family_given_of, orcid_of, zenodo_to_crate

#: flat Zenodo deposition metadata we map (the classic API's names)
ZENODO_KEYS = frozenset(
    {
        "title",
        "description",
        "upload_type",
        "publication_type",
        "image_type",
        "creators",
        "contributors",
        "publication_date",
        "keywords",
        "license",
        "version",
        "language",
        "notes",
        "grants",
        "related_identifiers",
    }
)
#: DataCite kernel-4 keys as Layer 2 spells them (singular and plural forms both occur)
DATACITE_KEYS = frozenset(
    {
        "Titles",
        "Title",
        "Creators",
        "Creator",
        "PublicationYear",
        "Publisher",
        "ResourceType",
        "Identifiers",
        "Descriptions",
        "Description",
        "Subjects",
        "Language",
        "Version",
        "SchemaVersion",  # describes the dict itself, nothing to map
    }
)
# DataCite resourceTypeGeneral -> Zenodo upload type, where the two vocabularies differ
_GENERAL_TYPES = {"text": "publication", "audiovisual": "video", "model": "other"}


def crate_from_legacy(value: dict[str, Any]) -> dict[str, Any]:
    """The RO-Crate for a DataCite-style or flat Zenodo-style metadata dict."""
    if any(key in DATACITE_KEYS for key in value):
        _refuse_unknown(value, DATACITE_KEYS)
        zenodo = _from_datacite(value)
        publisher = _text(value.get("Publisher"), "publisher")
        _refuse_unread(value, zenodo, publisher)
    else:
        _refuse_unknown(value, ZENODO_KEYS)
        _refuse_wrong_shapes(value)
        zenodo = {**value, "creators": [_zenodo_agent(c) for c in _items(value, "creators")]}
        publisher = None
    crate = zenodo_to_crate({k: v for k, v in zenodo.items() if v not in (None, "", [])})
    if publisher:
        org = {"@id": "#publisher", "@type": "Organization", "name": publisher}
        crate["@graph"][1]["publisher"] = {"@id": org["@id"]}
        crate["@graph"].append(org)
    return crate


def _refuse_unknown(value: dict[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise BadRequest(
            f"metadata is neither an RO-Crate nor a metadata dict this connector maps; "
            f"unknown keys: {', '.join(unknown[:10])}",
            field="metadata",
        )


# what each DataCite key becomes; a key that was sent but became nothing is a 400
_DATACITE_TARGETS = {
    "Titles": "title",
    "Title": "title",
    "Creators": "creators",
    "Creator": "creators",
    "PublicationYear": "publication_date",
    "Descriptions": "description",
    "Description": "description",
    "Subjects": "keywords",
    "Language": "language",
    "Version": "version",
    "Identifiers": "related_identifiers",
    "ResourceType": "upload_type",
}
_ZENODO_TEXT = frozenset(
    ZENODO_KEYS
    - {"creators", "contributors", "keywords", "grants", "related_identifiers", "license"}
)
_ZENODO_LISTS = frozenset({"creators", "contributors", "grants", "related_identifiers"})


def _refuse_unread(value: dict[str, Any], zenodo: dict[str, Any], publisher: str | None) -> None:
    """Every DataCite key sent with a value must have become something (nothing dropped)."""
    for key, target in _DATACITE_TARGETS.items():
        if value.get(key) in (None, "", [], {}):
            continue
        got = zenodo.get(target)
        if got in (None, "", []) or (target == "creators" and not all(c["name"] for c in got)):
            raise BadRequest(f"metadata.{key} could not be read (wrong shape)", field="metadata")
    if value.get("Publisher") not in (None, "", {}) and not publisher:
        raise BadRequest("metadata.Publisher could not be read (wrong shape)", field="metadata")


def _refuse_wrong_shapes(value: dict[str, Any]) -> None:
    """A flat Zenodo dict's texts are strings and its lists lists of objects."""
    for key, item in value.items():
        if item in (None, ""):
            continue
        wrong = (
            (key in _ZENODO_TEXT and not isinstance(item, str))
            or (
                key in _ZENODO_LISTS
                and not (isinstance(item, list) and all(isinstance(i, dict) for i in item))
            )
            or (key == "keywords" and not isinstance(item, (str, list)))
            or (key == "license" and not isinstance(item, (str, dict)))
        )
        if wrong:
            raise BadRequest(f"metadata.{key} has the wrong shape", field="metadata")


def _items(value: dict[str, Any], *keys: str) -> list[Any]:
    """The list under the first of ``keys`` present (a single value counts as a list of one)."""
    for key in keys:
        got = value.get(key)
        if got not in (None, "", []):
            return got if isinstance(got, list) else [got]
    return []


def _text(item: Any, *keys: str) -> str | None:
    """A plain string, or the first of ``keys`` of a dict (``{"title": ..., "lang": ...}``)."""
    if isinstance(item, dict):
        item = next((item[k] for k in keys if item.get(k) not in (None, "")), None)
    if item is None or isinstance(item, (dict, list)):
        return None
    text = str(item).strip()
    return text or None


def _zenodo_agent(item: Any) -> dict[str, Any]:
    """A flat Zenodo creator; a person's name without a comma is turned to "Family, Given"
    when an affiliation or ORCID says it is a person (else it stays a name as given)."""
    if not isinstance(item, dict):
        return {"name": _text(item) or ""}
    name = _text(item, "name") or ""
    if "," not in name and (item.get("affiliation") or orcid_of(item.get("orcid"))):
        name = family_given_of(name)
    return {**item, "name": name}


def _from_datacite(value: dict[str, Any]) -> dict[str, Any]:
    """DataCite kernel-4 (as Layer 2 sends it) -> flat Zenodo deposition metadata."""
    year = _text(value.get("PublicationYear"))
    return {
        "title": next(
            (t for t in (_text(i, "title") for i in _items(value, "Titles", "Title")) if t), None
        ),
        "creators": [_datacite_agent(c) for c in _items(value, "Creators", "Creator")],
        "publication_date": year,
        "description": next(
            (
                t
                for t in (
                    _text(i, "description") for i in _items(value, "Descriptions", "Description")
                )
                if t
            ),
            None,
        ),
        "keywords": [t for t in (_text(i, "subject") for i in _items(value, "Subjects")) if t],
        "language": _text(value.get("Language")),
        "version": _text(value.get("Version")),
        "related_identifiers": [
            {"identifier": ident, "relation": "isAlternateIdentifier"}
            for ident in (_text(i, "identifier") for i in _items(value, "Identifiers"))
            if ident
        ],
        **_resource_type(value.get("ResourceType")),
    }


def _datacite_agent(item: Any) -> dict[str, Any]:
    """One DataCite creator (``name`` or ``creatorName``, given/family, affiliations, ORCID)."""
    if not isinstance(item, dict):
        return {"name": _text(item) or ""}
    family, given = _text(item, "familyName"), _text(item, "givenName")
    name = _text(item, "name", "creatorName") or ""
    if item.get("nameType") != "Organizational":
        if family:
            name = f"{family}, {given}" if given else family
        elif name and "," not in name:
            name = family_given_of(name)
    out: dict[str, Any] = {"name": name}
    affiliations = [a for a in (_text(i, "name") for i in _items(item, "affiliation")) if a]
    if affiliations:
        out["affiliation"] = "; ".join(affiliations)
    for ident in _items(item, "nameIdentifiers"):
        orcid = orcid_of(_text(ident, "nameIdentifier"))
        if orcid:
            out["orcid"] = orcid
    return out


def _resource_type(value: Any) -> dict[str, str]:
    """``ResourceType`` (a Zenodo/DataCite term, or ``{"resourceTypeGeneral": ...}``)."""
    text = _text(value, "resourceTypeGeneral", "resourceType")
    if not text:
        return {}  # absent, or unreadable: _refuse_unread names it
    term = text.strip().lower()
    term = _GENERAL_TYPES.get(term, term)
    if term not in UPLOAD_TYPES:
        raise BadRequest(
            f"ResourceType {text!r} is not one this connector maps ({', '.join(UPLOAD_TYPES)})",
            field="metadata",
        )
    return {"upload_type": term}
