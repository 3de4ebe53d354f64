"""Reading an RO-Crate once: its root, its entities, and the values a writer needs.

Boundary: target-neutral. Nothing here knows Zenodo or any archive's field names; each
writer (``common.rocrate.zenodo``) shapes what these functions read. Raises only
``common.errors.BadRequest``, naming the RO-Crate property at fault in ``field``.

Finding the root (RO-Crate 1.0, 1.1, 1.2): the metadata descriptor is the ``@graph`` entity
``ro-crate-metadata.json`` (legacy ``ro-crate-metadata.jsonld``, or a URL ending in either)
whose ``conformsTo`` names ``https://w3id.org/ro/crate/...``; its ``about`` names the root
data entity. A descriptor without ``conformsTo`` is accepted only when none has one.

Guards: at most ``MAX_ENTITIES`` entities, texts of at most ``MAX_TEXT`` characters, lists
of at most ``MAX_LIST`` values, reference chains of at most ``MAX_DEPTH`` steps; a cycle of
references is a 400 naming the property. Tolerated as found in real crates: repeated
``@id`` entities (merged), strings that are an entity's ``@id`` (read as references),
literals in ``{"@value": ...}``. Names given only as ``name`` are turned around at the last
space (``Josiah Carberry`` -> ``Carberry, Josiah``); ORCIDs are accepted from ``@id`` or
``identifier`` (URL or bare) and kept only when their check digit is right.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from common.errors import BadRequest
from common.rocrate.vocab import (
    LANGUAGE_BIBLIOGRAPHIC,
    LANGUAGE_NAMES,
    LANGUAGES,
    NAME_PARTICLES,
    ORGANIZATION_TYPES,
    ROR_TO_FUNDER_DOI,
)

MAX_ENTITIES = 100_000
MAX_TEXT = 1_000_000
MAX_DEPTH = 32
MAX_LIST = 10_000

DESCRIPTOR_NAMES = ("ro-crate-metadata.json", "ro-crate-metadata.jsonld")
SPEC_PREFIXES = ("https://w3id.org/ro/crate/", "http://w3id.org/ro/crate/")
ROOT_ALIASES = ("./", ".")

_ORCID = re.compile(r"(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
_DOI = re.compile(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)
_FUNDER_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/)?(10\.13039/\d+)$", re.IGNORECASE)
_ROR = re.compile(r"^(?:https?://)?ror\.org/(0[a-z0-9]{8})/?$", re.IGNORECASE)
_HANDLE = re.compile(r"^(?:hdl:|https?://hdl\.handle\.net/)(\d[\w.]*/\S+)$", re.IGNORECASE)
_ARXIV = re.compile(r"^(?:arxiv:|https?://arxiv\.org/abs/)(\d{4}\.\d{4,5}(?:v\d+)?)$", re.I)
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:[T ].*)?$")
_URI = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|mailto:|urn:|doi:|info:)", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# The graph


class Graph:
    """The crate's entities by ``@id``; the root's shape is checked before anything is read."""

    def __init__(self, crate: Any) -> None:
        if not isinstance(crate, dict):
            raise BadRequest("the RO-Crate must be a JSON object", field="metadata")
        if "@context" not in crate or not isinstance(crate["@context"], str | list | dict):
            raise BadRequest("the RO-Crate has no JSON-LD @context", field="metadata")
        graph = crate.get("@graph")
        if not isinstance(graph, list):
            raise BadRequest("the RO-Crate has no @graph list", field="metadata")
        if len(graph) > MAX_ENTITIES:
            raise BadRequest(
                f"the RO-Crate has {len(graph)} entities, more than {MAX_ENTITIES}",
                field="metadata",
            )
        self.entities: dict[str, dict[str, Any]] = {}
        for entity in graph:
            if isinstance(entity, dict) and isinstance(entity.get("@id"), str):
                known = self.entities.get(entity["@id"])
                if known is None:
                    self.entities[entity["@id"]] = entity
                else:
                    # JSON-LD merges nodes with one @id (real crates repeat them, e.g.
                    # ROHub's); the first value of a property wins.
                    self.entities[entity["@id"]] = {**entity, **known}

    def get(self, ref: Any) -> dict[str, Any] | None:
        """The entity a value refers to (an ``{"@id"}`` reference or a nested entity).

        A plain string that is the ``@id`` of an entity counts as a reference too: JSON-LD
        would read it as a literal, but crates in the wild (ROHub) mean the entity.
        """
        if isinstance(ref, str) and ref in self.entities and ref not in ROOT_ALIASES:
            return self.entities[ref]
        if isinstance(ref, dict):
            ident = ref.get("@id")
            if isinstance(ident, str) and ident in self.entities and len(ref) == 1:
                return self.entities[ident]
            return ref
        return None


def values_of(value: Any) -> list[Any]:
    """A JSON-LD property value as a list (single values and lists alike)."""
    if value is None:
        return []
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            raise BadRequest(f"a list has more than {MAX_LIST} values", field="metadata")
        return value
    return [value]


def types_of(entity: dict[str, Any]) -> list[str]:
    return [t for t in values_of(entity.get("@type")) if isinstance(t, str)]


def ref_ids(value: Any) -> list[str]:
    return [
        v["@id"] for v in values_of(value) if isinstance(v, dict) and isinstance(v.get("@id"), str)
    ] + [v for v in values_of(value) if isinstance(v, str)]


def _is_spec(value: Any) -> bool:
    return any(i.startswith(SPEC_PREFIXES) for i in ref_ids(value))


def _is_descriptor_id(ident: str) -> bool:
    return ident in DESCRIPTOR_NAMES or ident.endswith(tuple("/" + n for n in DESCRIPTOR_NAMES))


def root_of(graph: Graph) -> dict[str, Any]:
    candidates = [e for i, e in graph.entities.items() if _is_descriptor_id(i)]
    if not candidates:
        raise BadRequest(
            "the RO-Crate has no metadata descriptor (ro-crate-metadata.json)", field="metadata"
        )
    # Prefer a descriptor that conforms to an RO-Crate spec, then the plain file name.
    candidates.sort(
        key=lambda e: (not _is_spec(e.get("conformsTo")), e["@id"] not in DESCRIPTOR_NAMES)
    )
    about = candidates[0].get("about")
    ids = ref_ids(about)
    if not ids:
        raise BadRequest("the metadata descriptor has no 'about'", field="metadata")
    root_id = ids[0]
    tried = [root_id] + (
        [a for a in ROOT_ALIASES if a != root_id] if root_id in ROOT_ALIASES else []
    )
    for ident in tried:
        root = graph.entities.get(ident)
        if root is not None:
            if _is_descriptor_id(ident):
                raise BadRequest("the metadata descriptor is about itself", field="metadata")
            return root
    raise BadRequest(f"the root data entity {root_id!r} is not in the @graph", field="metadata")


def find_root(crate: dict[str, Any]) -> dict[str, Any]:
    """The root data entity of an RO-Crate, found through its metadata descriptor."""
    return root_of(Graph(crate))


# ---------------------------------------------------------------------------------------------
# Values


def text_of(value: Any, prop: str) -> str | None:
    """A literal as text (``{"@value"}`` and numbers included), bounded in length."""
    if isinstance(value, dict) and "@value" in value:
        value = value["@value"]
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{prop} is longer than {MAX_TEXT} characters", field=prop)
    value = value.strip()
    return value or None


def first_text(entity: dict[str, Any], *props: str) -> str | None:
    for prop in props:
        for value in values_of(entity.get(prop)):
            text = text_of(value, prop)
            if text:
                return text
    return None


def label_of(graph: Graph, value: Any, prop: str) -> str | None:
    """A human name for a literal or referenced entity (``name``, else its id or url)."""
    entity = graph.get(value)
    if entity is None:
        return text_of(value, prop)
    return first_text(entity, "name", "legalName", "alternateName", "@id")


def parse_date(value: Any) -> str | None:
    """``YYYY-MM-DD`` from a full or partial ISO date or datetime, or ``None``."""
    text = text_of(value, "datePublished")
    if not text:
        return None
    match = _DATE.match(text)
    if not match:
        return None
    year, month, day = match.group(1), match.group(2) or "01", match.group(3) or "01"
    try:
        return _dt.date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


def orcid_of(value: Any) -> str | None:
    """The ORCID iD in a URL or bare form, if its ISO 7064 check digit is right."""
    text = text_of(value, "creator")
    if not text:
        return None
    text = text.rstrip("/")
    if "/" in text and not re.match(r"^https?://(?:www\.|sandbox\.)?orcid\.org/", text, re.I):
        return None
    match = _ORCID.search(text.upper() if text[-1] in "xX" else text)
    if not match or len(text) > 60:
        return None
    orcid = match.group(1)
    digits = orcid.replace("-", "")
    total = 0
    for char in digits[:-1]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    expected = "X" if check == 10 else str(check)
    return orcid if digits[-1] == expected else None


def doi_of(value: str) -> str | None:
    """The bare DOI (``10.x/y``) in ``doi:``, ``https://doi.org/`` or bare form."""
    match = _DOI.match(value.strip())
    return match.group(1) if match else None


def normalise_identifier(value: str) -> str | None:
    """An identifier in a form scheme detection (idutils, as Zenodo uses) recognises, or ``None``."""
    value = value.strip()
    if not value or len(value) > 2000:
        return None
    doi = doi_of(value)
    if doi:
        return doi
    handle = _HANDLE.match(value)
    if handle:
        return "hdl:" + handle.group(1)
    arxiv = _ARXIV.match(value)
    if arxiv:
        return "arXiv:" + arxiv.group(1)
    if re.match(r"^(https?|ftp)://[^\s/]+\.[^\s]+$", value, re.I):
        return value
    if re.match(r"^(urn|ark|purl):\S+$", value, re.I) or re.match(r"^ark:/\S+$", value, re.I):
        return value
    return None


# ---------------------------------------------------------------------------------------------
# Agents


PERSON = "Person"
ORGANIZATION = "Organization"


@dataclass(frozen=True)
class Agent:
    """A creator or contributor as the crate names it, before any archive's shape."""

    name: str  # a person's as "Family, Given"; an organisation's or a bare name as written
    kind: str | None = None  # PERSON, ORGANIZATION, or None for a bare name
    family: str | None = None  # familyName and givenName when the crate gives them
    given: str | None = None
    orcid: str | None = None
    affiliations: tuple[str, ...] = ()


def _person_name(entity: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(``Family, Given``, familyName, givenName) of a person; the name turned if only whole."""
    family = first_text(entity, "familyName")
    given = first_text(entity, "givenName")
    if family and given:
        return f"{family}, {given}", family, given
    if family or given:
        return family or given, family, given
    name = first_text(entity, "name")
    return (family_given_of(name) if name else None), None, None


def family_given_of(name: str) -> str:
    """``Given [particles] Family`` -> ``[particles] Family, Given``; commas kept as they are.

    A heuristic for names given only whole: the family name is the last word together with
    the lower-case particles before it (``Shaun de Witt`` -> ``de Witt, Shaun``).
    """
    words = name.split()
    if "," in name or len(words) < 2:
        return name
    start = len(words) - 1
    while start > 1 and words[start - 1].lower() in NAME_PARTICLES:
        start -= 1
    return f"{' '.join(words[start:])}, {' '.join(words[:start])}"


def is_organization(entity: dict[str, Any]) -> bool:
    """Whether an agent's ``@type`` says it is not a person (``*Organization``, ``Project``...)."""
    for kind in types_of(entity):
        low = kind.rsplit(":", 1)[-1].rsplit("#", 1)[-1].rsplit("/", 1)[-1].lower()
        if low.endswith(("organization", "organisation")) or low in ORGANIZATION_TYPES:
            return True
    return False


def agent_of(graph: Graph, value: Any, prop: str) -> Agent | None:
    """One agent from a Person, an Organization or a bare name; ``None`` if it names nobody."""
    entity = graph.get(value)
    text = text_of(value, prop) if entity is None else None
    if text:
        # A literal name. A URL is an identifier, not a name: without an entity to name
        # it, an archive would show the URL as a person.
        return None if _URI.match(text) else Agent(text)
    if entity is None:
        return None
    if is_organization(entity):
        name = first_text(entity, "name", "legalName", "alternateName")
        return Agent(name, ORGANIZATION) if name else None
    name, family, given = _person_name(entity)
    if not name:
        return None
    orcid = None
    for candidate in [entity.get("@id"), *values_of(entity.get("identifier"))]:
        found = graph.get(candidate)  # a PropertyValue, by reference or nested
        if found is not None:
            candidate = found.get("value") or found.get("@id")
        orcid = orcid_of(candidate)
        if orcid:
            break
    affiliations: list[str] = []
    for aff in values_of(entity.get("affiliation")):
        label = label_of(graph, aff, prop)
        if label and label not in affiliations:
            affiliations.append(label)
    return Agent(name, PERSON, family, given, orcid, tuple(affiliations))


def agents_of(graph: Graph, entity: dict[str, Any], prop: str) -> list[Agent]:
    """The agents an entity's property names, in order (repeats kept: writers dedupe)."""
    return [a for a in (agent_of(graph, v, prop) for v in values_of(entity.get(prop))) if a]


def creators(graph: Graph, root: dict[str, Any]) -> list[Agent]:
    """Every creator; else the authors of the main entity (a workflow's), else the publisher.

    ``[]`` when no source names anyone: the writer chooses its placeholder.
    """
    main = graph.get(root.get("mainEntity"))
    sources = [(root, "creator"), (root, "author")]
    if main is not None:
        sources += [(main, "creator"), (main, "author")]
    sources += [(root, "publisher"), (root, "sourceOrganization")]
    for entity, prop in sources:
        agents = agents_of(graph, entity, prop)
        if agents:
            return agents
    return []


# ---------------------------------------------------------------------------------------------
# Licences, dates, languages, funders, identifiers, keywords


def follow(graph: Graph, value: Any, props: tuple[str, ...], prop: str) -> Iterator[str]:
    """Texts of a value, following references through ``props`` depth-first.

    A reference met twice on one path is a cycle and a bad request; the chain is also
    bounded by ``MAX_DEPTH`` so a deep nesting cannot exhaust the stack.
    """

    def walk(item: Any, path: tuple[str, ...], depth: int) -> Iterator[str]:
        if depth > MAX_DEPTH:
            raise BadRequest(f"{prop} references nest deeper than {MAX_DEPTH}", field=prop)
        if isinstance(item, str) and item not in path and graph.get(item) is not None:
            item = {"@id": item}  # a string naming an entity, not itself
        text = text_of(item, prop)
        if text:
            yield text
            return
        if not isinstance(item, dict):
            return
        ident = item.get("@id")
        if isinstance(ident, str) and ident in path:
            raise BadRequest(f"{prop} references form a cycle through {ident!r}", field=prop)
        entity = graph.get(item)
        if entity is None:
            return
        here = (*path, ident) if isinstance(ident, str) else path
        for name in props:
            if name == "@id":
                if isinstance(ident, str) and not ident.startswith("#"):
                    yield ident
                continue
            for sub in values_of(entity.get(name)):
                yield from walk(sub, here, depth + 1)

    yield from walk(value, (), 0)


def _parts_license(graph: Graph, root: dict[str, Any]) -> list[Any]:
    """The one licence every licensed part of the root shares, as ``[value]``, else ``[]``.

    A crate often licenses its files and not itself (the spec's rainfall example); an
    archive needs one licence for the record, and the files' common one is the honest choice.
    """
    found: list[Any] = []
    for part in values_of(root.get("hasPart")):
        entity = graph.get(part)
        for value in values_of(entity.get("license")) if entity is not None else []:
            if value not in found:
                found.append(value)
    return found if len(found) == 1 else []


def license_values(graph: Graph, root: dict[str, Any]) -> list[Any]:
    """The root's ``license`` values; else the one licence all its licensed parts share."""
    return values_of(root.get("license")) or _parts_license(graph, root)


def license_texts(graph: Graph, value: Any) -> Iterator[str]:
    """The texts naming one licence value (identifier, ``@id``, url, value, name), lazily."""
    return follow(graph, value, ("identifier", "@id", "url", "value", "name"), "license")


def date_published(root: dict[str, Any]) -> str | None:
    """The root's ``datePublished`` as ``YYYY-MM-DD`` (a list: its first valid date), or ``None``."""
    dates = values_of(root.get("datePublished"))
    published = next((d for d in map(parse_date, dates) if d), None)
    if dates and not published:
        raise BadRequest(
            f"datePublished {dates[0]!r} is not an ISO 8601 date (YYYY, YYYY-MM or YYYY-MM-DD)",
            field="datePublished",
        )
    return published


def language_of(graph: Graph, value: Any) -> str | None:
    """ISO 639-3 code for an ISO 639-1/2/3 code, BCP 47 tag, Language entity or English name."""
    entity = graph.get(value)
    texts = (
        [value]
        if entity is None
        else [
            entity.get("alternateName"),
            entity.get("identifier"),
            entity.get("name"),
            entity.get("@id"),
        ]
    )
    for item in texts:
        text = text_of(
            item if not isinstance(item, list) else (item[0] if item else None), "inLanguage"
        )
        if not text:
            continue
        text = text.lstrip("#").lower()
        primary = re.split(r"[-_]", text)[0]
        if primary in LANGUAGES:
            return LANGUAGES[primary]
        if re.fullmatch(r"[a-z]{3}", primary):
            return LANGUAGE_BIBLIOGRAPHIC.get(primary, primary)
        if text in LANGUAGE_NAMES:
            return LANGUAGE_NAMES[text]
    return None


def languages(graph: Graph, root: dict[str, Any]) -> Iterator[str]:
    """The ISO 639-3 codes of the root's ``inLanguage`` values that name one, lazily."""
    for value in values_of(root.get("inLanguage")):
        code = language_of(graph, value)
        if code:
            yield code


def funder_doi(graph: Graph, value: Any) -> str | None:
    """The Crossref Funder DOI of a funder: its id or identifier, or its ROR id if known."""
    entity = graph.get(value)
    texts = [value] if entity is None else [entity.get("@id"), *values_of(entity.get("identifier"))]
    for item in texts:
        text = text_of(item, "funding") or ""
        match = _FUNDER_DOI.match(text)
        if match:
            return match.group(1)
        ror = _ROR.match(text)
        if ror and ror.group(1).lower() in ROR_TO_FUNDER_DOI:
            return ROR_TO_FUNDER_DOI[ror.group(1).lower()]
    return None


def identifier_texts(graph: Graph, value: Any, prop: str) -> Iterator[str]:
    """Identifier strings of a literal, a reference, or an entity (identifier, @id, url)."""
    return follow(graph, value, ("identifier", "value", "@id", "url"), prop)


def keywords(graph: Graph, root: dict[str, Any]) -> list[str]:
    """The root's keywords: comma-separated texts split, entities by name, no repeats."""
    out: list[str] = []
    for value in values_of(root.get("keywords")):
        text = text_of(value, "keywords")
        parts = text.split(",") if text else [label_of(graph, value, "keywords") or ""]
        for part in parts:
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def crate_document(root: dict[str, Any], entities: list[dict[str, Any]]) -> dict[str, Any]:
    """An RO-Crate 1.1 document: its metadata descriptor, ``root`` and the ``entities``."""
    descriptor = {
        "@id": "ro-crate-metadata.json",
        "@type": "CreativeWork",
        "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
        "about": {"@id": "./"},
    }
    return {
        "@context": "https://w3id.org/ro/crate/1.1/context",
        "@graph": [descriptor, root, *entities],
    }
