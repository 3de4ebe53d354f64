"""The Zenodo writer: RO-Crate -> Zenodo deposition metadata, and the reader back.

Boundary: this module only turns one JSON document into another. It never talks to Zenodo,
never reads files, and raises only ``common.errors.BadRequest`` (naming the RO-Crate
property at fault in ``field``) for input it cannot map. It reads crates through
``common.rocrate.graph`` and looks terms up in ``common.rocrate.vocab``; everything shaped
like Zenodo's classic deposition API is here. The Zenodo backend calls ``crate_to_zenodo``
on PATCH, ``zenodo_to_crate`` on GET, and ``crate_property_for`` to turn a Zenodo
validation error (``metadata.creators.0.name``) into the property the user wrote
(``creator``).

Mapping (RO-Crate root property -> Zenodo classic ``metadata`` field); full table with
examples in ``docs/rocrate-mapping.md``:

==========================  ====================================================================
RO-Crate                    Zenodo
==========================  ====================================================================
name (headline)             title; default ``"Untitled"``
description                 description, escaped as plain text (newlines -> ``<br>``);
                            default: the title
datePublished               publication_date ``YYYY-MM-DD``; ``2017`` -> ``2017-01-01``,
                            ``2017-05`` -> ``2017-05-01``; a list: its first valid date;
                            default: today (``today=`` is injectable)
creator (author)            creators ``{"name": "Family, Given", "orcid", "affiliation"}``;
                            Organizations by name; default: the ``mainEntity``'s creator or
                            author (a workflow's), then ``publisher``, then
                            ``sourceOrganization``; else none (no placeholder: the
                            backend refuses to publish a record without creators)
contributor, editor,        contributors with type Other, Editor, Producer, RightsHolder,
producer, copyrightHolder   ContactPerson
accountablePerson
license                     license id (``cc-by-4.0``, ``cc-zero``, ``mit`` ...); ported CC
                            licences Zenodo lacks map to the generic one plus a
                            ``Licence: URL`` note; none on the root: the one licence all
                            licensed ``hasPart`` entities share; else none (no default:
                            publish is refused without one); an unknown licence is a 400
keywords                    keywords (comma-separated string or list, deduplicated)
@type, additionalType,      upload_type (+ publication_type / image_type); default dataset
genre, mainEntity
version                     version (as text)
inLanguage                  language, ISO 639-2/3 (``en``/``en-GB`` -> ``eng``)
funding, funder             grants ``{"id": "<funder DOI>::<number>"}`` when the funder has a
                            Crossref Funder DOI (or a ROR id in ``ROR_TO_FUNDER_DOI``) and
                            the grant a number; otherwise a
                            ``Funding: ...`` line in notes (``Funder: ...`` for a funder
                            without a grant)
citation                    related_identifiers relation ``cites``
isBasedOn                   related_identifiers relation ``isDerivedFrom``
identifier, @id (absolute)  related_identifiers relation ``isAlternateIdentifier`` (Zenodo's
                            own DOIs ``10.5281/zenodo.*``/``10.5072/zenodo.*`` are skipped:
                            Zenodo mints those itself)
sameAs                      related_identifiers relation ``isIdenticalTo``
isPartOf                    related_identifiers relation ``isPartOf``
==========================  ====================================================================

``access_right`` is always ``open`` (RDS publishes open data). People are written as
``Family, Given`` (see ``common.rocrate.graph`` for names, ORCIDs and the guards).

Back (``zenodo_to_crate``): an RO-Crate 1.1 whose root reads back into the same Zenodo
metadata (``crate -> zenodo -> crate -> zenodo`` is stable); Zenodo's own DOI becomes the
root's ``identifier``, creators without a comma and without an ORCID become Organizations
(``crate_to_zenodo`` writes every person as ``Family, Given``), files become ``File``
entities with ``contentSize`` and an MD5 ``PropertyValue`` in ``identifier``.
"""

from __future__ import annotations

import datetime as _dt
import html
import re
from typing import Any
from urllib.parse import quote

from common.errors import BadRequest
from common.rocrate.graph import (
    DESCRIPTOR_NAMES,
    Agent,
    Graph,
    agents_of,
    crate_document,
    creators,
    date_published,
    doi_of,
    first_text,
    funder_doi,
    identifier_texts,
    keywords,
    label_of,
    languages,
    license_texts,
    license_values,
    normalise_identifier,
    orcid_of,
    root_of,
    text_of,
    types_of,
    values_of,
)
from common.rocrate.vocab import (
    CONTRIBUTOR_PROPERTIES,
    GENERIC_TYPE,
    IMAGE_TYPES,
    PUBLICATION_TYPES,
    RELATION_PROPERTIES,
    REVERSE_TYPE,
    SPDX_TO_ZENODO,
    TYPE_TABLE,
    UPLOAD_TYPES,
    license_key,
)

DEFAULT_TITLE = "Untitled"
DEFAULT_UPLOAD_TYPE = "dataset"
UNKNOWN_CREATOR = "Unknown"

# Zenodo field (first path segment after ``metadata.``) -> RO-Crate property.
FIELD_TO_PROPERTY: dict[str, str] = {
    "title": "name",
    "description": "description",
    "publication_date": "datePublished",
    "creators": "creator",
    "contributors": "contributor",
    "license": "license",
    "keywords": "keywords",
    "upload_type": "@type",
    "publication_type": "@type",
    "image_type": "@type",
    "version": "version",
    "language": "inLanguage",
    "grants": "funding",
}

_ZENODO_DOI = re.compile(r"^10\.(5281|5072)/zenodo\.\d+$", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


# ---------------------------------------------------------------------------------------------
# RO-Crate -> Zenodo


def _agent(agent: Agent) -> dict[str, str]:
    """One Zenodo creator/contributor: ``name``, then ``affiliation`` and ``orcid`` if known."""
    out = {"name": agent.name}
    if agent.affiliations:
        out["affiliation"] = "; ".join(agent.affiliations)
    if agent.orcid:
        out["orcid"] = agent.orcid
    return out


def _unique(agents: list[Agent]) -> list[dict[str, str]]:
    """Zenodo agents in order, each once."""
    out: list[dict[str, str]] = []
    for agent in map(_agent, agents):
        if agent not in out:
            out.append(agent)
    return out


def _creators(graph: Graph, root: dict[str, Any]) -> list[dict[str, str]]:
    """The crate's creators; none when it names none (never a placeholder)."""
    return _unique(creators(graph, root))


def _contributors(graph: Graph, root: dict[str, Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for prop, kind in CONTRIBUTOR_PROPERTIES:
        for agent in _unique(agents_of(graph, root, prop)):
            out.append({**agent, "type": kind})
    return out


def _license(graph: Graph, root: dict[str, Any]) -> tuple[str | None, str | None]:
    values = license_values(graph, root)
    if not values:
        return None, None  # nobody chose one: none is written (publish then refuses)
    seen: list[str] = []
    for value in values:
        for text in license_texts(graph, value):
            seen.append(text)
            zenodo, note = license_key(text)
            if zenodo:
                return zenodo, note
    raise BadRequest(
        f"license {seen[0] if seen else values[0]!r} has no Zenodo equivalent; "
        "give an SPDX id such as CC-BY-4.0 or a creativecommons.org URL",
        field="license",
    )


def upload_type_of(graph: Graph, root: dict[str, Any]) -> dict[str, str]:
    base: tuple[str, str | None] | None = None
    for kind in types_of(root):
        if kind != "Dataset" and kind in TYPE_TABLE:
            base = TYPE_TABLE[kind]
            break
    if base is None:
        main = graph.get(root.get("mainEntity"))
        if main is not None and "ComputationalWorkflow" in types_of(main):
            base = ("software", None)
    upload, sub = base or (DEFAULT_UPLOAD_TYPE, None)
    for value in values_of(root.get("genre")) + values_of(root.get("additionalType")):
        term = (text_of(value, "genre") or "").lower()
        subtypes = {"publication": PUBLICATION_TYPES, "image": IMAGE_TYPES}.get(upload, ())
        if term in subtypes:
            sub = term
        elif term in UPLOAD_TYPES:
            upload, sub = term, None
        elif term in PUBLICATION_TYPES:
            upload, sub = "publication", term
        elif term in IMAGE_TYPES:
            upload, sub = "image", term
        else:
            continue
        break
    out = {"upload_type": upload}
    if upload == "publication":
        out["publication_type"] = sub or "other"
    elif upload == "image":
        out["image_type"] = sub or "other"
    return out


def _funding(graph: Graph, root: dict[str, Any]) -> tuple[list[dict[str, str]], list[str]]:
    grants: list[dict[str, str]] = []
    notes: list[str] = []
    for value in values_of(root.get("funding")):
        grant = graph.get(value)
        if grant is None:
            text = text_of(value, "funding")
            if text:
                notes.append(f"Funding: {text}")
            continue
        number = first_text(grant, "identifier")
        funders = values_of(grant.get("funder"))
        funder = next((d for d in (funder_doi(graph, f) for f in funders) if d), None)
        if number and funder and re.fullmatch(r"[\w./-]{1,100}", number):
            entry = {"id": f"{funder}::{number}"}
            if entry not in grants:
                grants.append(entry)
            continue
        label = first_text(grant, "name", "identifier", "@id") or ""
        funder_names = [n for n in (label_of(graph, f, "funding") for f in funders) if n]
        if funder_names:
            label = f"{label} ({', '.join(funder_names)})" if label else ", ".join(funder_names)
        if label:
            notes.append(f"Funding: {label}")
    for value in values_of(root.get("funder")):
        funder = label_of(graph, value, "funder")
        if funder and not any(funder in n for n in notes) and not grants:
            notes.append(f"Funder: {funder}")
    return grants, notes


def _related(graph: Graph, root: dict[str, Any]) -> list[dict[str, str]]:
    """Related identifiers, each value's first recognisable identifier, in table order."""
    out: list[dict[str, str]] = []

    def add(ident: str | None, relation: str) -> bool:
        if not ident or (relation == "isAlternateIdentifier" and _ZENODO_DOI.match(ident)):
            return False
        entry = {"identifier": ident, "relation": relation}
        if entry not in out:
            out.append(entry)
        return True

    for prop, relation in RELATION_PROPERTIES:
        if prop == "identifier" and isinstance(root.get("@id"), str):
            add(normalise_identifier(root["@id"]), relation)  # a detached crate's URL
        for value in values_of(root.get(prop)):
            for text in identifier_texts(graph, value, prop):
                if add(normalise_identifier(text), relation):
                    break
    return out


def _description(root: dict[str, Any], title: str) -> str:
    text = first_text(root, "description", "abstract") or title
    return html.escape(text, quote=False).replace("\r\n", "\n").replace("\n", "<br>")


def crate_to_zenodo(crate: dict[str, Any], *, today: _dt.date | None = None) -> dict[str, Any]:
    """The Zenodo classic deposition ``metadata`` for an RO-Crate: title, description, date
    and type defaulted; creators and licence only as the crate gives them."""
    graph = Graph(crate)
    root = root_of(graph)
    title = first_text(root, "name", "headline") or DEFAULT_TITLE
    published = date_published(root)
    license_id, license_note = _license(graph, root)
    grants, notes = _funding(graph, root)
    meta: dict[str, Any] = {
        "title": title,
        "description": _description(root, title),
        "publication_date": published or (today or _dt.date.today()).isoformat(),
        "access_right": "open",
        **upload_type_of(graph, root),
    }
    optional: dict[str, Any] = {
        "creators": _creators(graph, root),
        "license": license_id,
        "contributors": _contributors(graph, root),
        "keywords": keywords(graph, root),
        "version": first_text(root, "version"),
        "language": next(languages(graph, root), None),
        "grants": grants,
        "related_identifiers": _related(graph, root),
        "notes": "\n".join(([license_note] if license_note else []) + notes),
    }
    meta.update({k: v for k, v in optional.items() if v})
    return meta


# ---------------------------------------------------------------------------------------------
# Back: Zenodo -> RO-Crate


def plain_text(description: str) -> str:
    text = re.sub(r"<br\s*/?>", "\n", description, flags=re.I)
    text = re.sub(r"</p>\s*<p[^>]*>", "\n\n", text, flags=re.I)
    return html.unescape(_TAG.sub("", text)).strip()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


class CrateBuilder:
    """Collects the entities of the crate ``zenodo_to_crate`` builds, with unique ids."""

    def __init__(self) -> None:
        self.entities: dict[str, dict[str, Any]] = {}

    def add(self, entity: dict[str, Any]) -> dict[str, str]:
        self.entities.setdefault(entity["@id"], entity)
        return {"@id": entity["@id"]}

    def organization(self, name: str) -> dict[str, str]:
        ident, n = f"#org-{_slug(name)}", 1
        while self.entities.get(ident, {"name": name}).get("name") != name:
            n += 1  # two names with one slug ("A B" and "a-b") stay two organisations
            ident = f"#org-{_slug(name)}-{n}"
        return self.add({"@id": ident, "@type": "Organization", "name": name})

    def agent(self, item: Any, prefix: str, index: int) -> dict[str, str] | None:
        """A Person (or Organization) entity for one Zenodo creator or contributor."""
        name = str(item.get("name") or "").strip() if isinstance(item, dict) else ""
        if not name or name == UNKNOWN_CREATOR:  # our own placeholder, not a person
            return None
        orcid = orcid_of(item.get("orcid"))
        if "," not in name and not orcid:
            # crate_to_zenodo writes people as "Family, Given": no comma means an organisation.
            return self.organization(name)
        ident = f"https://orcid.org/{orcid}" if orcid else f"#{prefix}-{index}"
        person: dict[str, Any] = {"@id": ident, "@type": "Person", "name": name}
        if "," in name:
            family, _, given = (part.strip() for part in name.partition(","))
            person.update(name=f"{given} {family}".strip(), familyName=family, givenName=given)
        affiliations = str(item.get("affiliation") or "").split(";")
        refs = [self.organization(a.strip()) for a in affiliations if a.strip()]
        if refs:
            person["affiliation"] = _one_or_many(refs)
        return self.add(person)

    def agents(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """``creator`` and the contributor properties, by Zenodo contributor type."""
        out: dict[str, Any] = {}
        creators = [self.agent(c, "creator", i) for i, c in enumerate(_list(metadata, "creators"))]
        if any(creators):
            out["creator"] = [c for c in creators if c]
        by_type = {kind: prop for prop, kind in CONTRIBUTOR_PROPERTIES}
        for i, item in enumerate(_list(metadata, "contributors")):
            ref = self.agent(item, "contributor", i)
            if ref:
                out.setdefault(by_type.get(item.get("type"), "contributor"), []).append(ref)
        return out

    def license(self, metadata: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        """The licence entity: the exact URL kept in the notes, else the SPDX page."""
        url = next((n[len("Licence: ") :] for n in notes if n.startswith("Licence: ")), None)
        if url:
            return {"license": self.add({"@id": url, "@type": "CreativeWork", "identifier": url})}
        license_id = metadata.get("license")
        if isinstance(license_id, dict):  # {"id": "cc-by-4.0"} as Zenodo answers it
            license_id = license_id.get("id")
        if not isinstance(license_id, str) or not license_id:
            return {}
        spdx = next((k for k, v in SPDX_TO_ZENODO.items() if v == license_id), license_id)
        entity = {"@id": f"https://spdx.org/licenses/{spdx}", "@type": "CreativeWork"}
        return {"license": self.add({**entity, "identifier": spdx})}

    def funding(self, metadata: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        """Grants (``funderDOI::number``) and the funding/funder lines of the notes."""
        funding = []
        for grant in _list(metadata, "grants"):
            gid = grant.get("id") if isinstance(grant, dict) else None
            if isinstance(gid, str) and "::" in gid:
                funder_doi, _, number = gid.partition("::")
                funder = self.add({"@id": f"https://doi.org/{funder_doi}", "@type": "Organization"})
                entity = {"@id": f"#grant-{_slug(gid)}", "@type": "Grant", "identifier": number}
                funding.append(self.add({**entity, "funder": funder}))
        for note in notes:
            if note.startswith("Funding: "):
                name = note[len("Funding: ") :]
                funding.append(
                    self.add({"@id": f"#funding-{_slug(name)}", "@type": "Grant", "name": name})
                )
        out: dict[str, Any] = {"funding": funding} if funding else {}
        funders = [
            self.organization(n[len("Funder: ") :]) for n in notes if n.startswith("Funder: ")
        ]
        if funders:
            out["funder"] = _one_or_many(funders)
        return out

    def files(self, files: list[dict[str, Any]] | None) -> dict[str, Any]:
        """``hasPart`` File entities with size and MD5 (never the metadata file itself)."""
        parts = []
        for item in files or []:
            name = (
                str(item.get("filename") or item.get("key") or "") if isinstance(item, dict) else ""
            )
            if not name or name.rsplit("/", 1)[-1] in DESCRIPTOR_NAMES:
                continue
            entity: dict[str, Any] = {"@id": quote(name, safe="/"), "@type": "File", "name": name}
            size = item.get("size", item.get("filesize"))
            if size is not None:
                entity["contentSize"] = str(size)
            checksum = str(item.get("checksum") or "").removeprefix("md5:")
            if checksum:
                # The RO-Crate context has no checksum term; a schema.org PropertyValue says it.
                entity["identifier"] = {
                    "@type": "PropertyValue",
                    "propertyID": "md5",
                    "value": checksum,
                }
            parts.append(self.add(entity))
        return {"hasPart": parts} if parts else {}


def _list(metadata: dict[str, Any], key: str) -> list[Any]:
    value = metadata.get(key)
    return value if isinstance(value, list) else []


def _one_or_many(items: list[Any]) -> Any:
    return items[0] if len(items) == 1 else items


def schema_types(metadata: dict[str, Any]) -> dict[str, Any]:
    """``@type`` (and ``genre`` where no schema.org type says it) for an upload type.

    Chosen so that ``upload_type_of`` reads back exactly the same upload and sub type.
    """
    upload = metadata.get("upload_type") or DEFAULT_UPLOAD_TYPE
    sub = metadata.get("publication_type") or metadata.get("image_type")
    schema_type = REVERSE_TYPE.get((upload, sub)) or GENERIC_TYPE.get(upload)
    out: dict[str, Any] = {"@type": ["Dataset", schema_type]} if schema_type else {}
    derived = TYPE_TABLE.get(schema_type or "Dataset", ("dataset", None))
    if derived != (upload, sub):
        out["genre"] = sub or upload
    return out


def _relations_back(metadata: dict[str, Any]) -> dict[str, Any]:
    """Zenodo's DOI and related identifiers as ``identifier``, ``citation``, ``isBasedOn``..."""
    out: dict[str, list[Any]] = {}
    if metadata.get("doi"):
        out["identifier"] = [f"https://doi.org/{metadata['doi']}"]
    by_relation = {relation: prop for prop, relation in RELATION_PROPERTIES}
    for item in _list(metadata, "related_identifiers"):
        prop = by_relation.get(str(item.get("relation"))) if isinstance(item, dict) else None
        ident = item.get("identifier") if prop else None
        if prop is not None and isinstance(ident, str):
            doi = doi_of(ident)
            url = f"https://doi.org/{doi}" if doi else ident
            out.setdefault(prop, []).append(url if prop == "identifier" else {"@id": url})
    return {k: _one_or_many(v) if k == "identifier" else v for k, v in out.items()}


def _literals_back(metadata: dict[str, Any]) -> dict[str, Any]:
    """The root's plain values: name, description as text, date, keywords, version, language."""
    keywords = metadata.get("keywords")
    values = {
        "name": metadata.get("title"),
        "description": plain_text(str(metadata["description"]))
        if metadata.get("description")
        else None,
        "datePublished": metadata.get("publication_date"),
        "keywords": [keywords] if isinstance(keywords, str) else keywords,
        "version": metadata.get("version"),
        "inLanguage": metadata.get("language"),
    }
    return {k: v for k, v in values.items() if v}


def zenodo_to_crate(
    metadata: dict[str, Any], *, files: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An RO-Crate 1.1 document describing a Zenodo deposition's metadata and files."""
    if not isinstance(metadata, dict):
        raise BadRequest("Zenodo metadata must be an object", field="metadata")
    build = CrateBuilder()
    notes = [n.strip() for n in str(metadata.get("notes") or "").splitlines() if n.strip()]
    root: dict[str, Any] = {
        "@id": "./",
        "@type": "Dataset",
        **schema_types(metadata),
        **_literals_back(metadata),
        **build.agents(metadata),
        **build.license(metadata, notes),
        **build.funding(metadata, notes),
        **_relations_back(metadata),
        **build.files(files),
    }
    return crate_document(root, list(build.entities.values()))


def crate_property_for(zenodo_field: str, *, metadata: dict[str, Any] | None = None) -> str:
    """The RO-Crate property behind a Zenodo error field (``creators.0.name`` -> ``creator``)."""
    parts = str(zenodo_field or "").split(".")
    if parts and parts[0] == "metadata":
        parts = parts[1:]
    if not parts:
        return "metadata"
    # A list entry's property depends on the entry: its relation or contributor type.
    by_entry = {
        "related_identifiers": ("relation", RELATION_PROPERTIES, "identifier"),
        "contributors": ("type", CONTRIBUTOR_PROPERTIES, "contributor"),
    }
    if parts[0] in by_entry:
        key, pairs, default = by_entry[parts[0]]
        items = (metadata or {}).get(parts[0]) or []
        if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(items):
            value = items[int(parts[1])].get(key)
            return next((prop for prop, term in pairs if term == value), default)
        return default
    return FIELD_TO_PROPERTY.get(parts[0], "metadata")
