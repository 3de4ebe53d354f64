"""The InvenioRDM writer: RO-Crate -> InvenioRDM record metadata, and the reader back.

Boundary: one JSON document into another, nothing else (no HTTP, no vocabulary look-up:
the backend checks licence ids against the instance). Raises only
``common.errors.BadRequest`` naming the RO-Crate property at fault. Reads crates through
``common.rocrate.graph``; InvenioRDM's default resource types are Zenodo's upload types
joined by ``-`` (``publication-article``), so the type is read as the Zenodo writer reads
it and joined here.

Nothing is invented: a crate without creators, title or date gives a draft without them
(InvenioRDM keeps partial drafts and names what is missing at publish). No placeholder
creator, no default licence, no default date.

==========================  ====================================================================
RO-Crate                    InvenioRDM ``metadata``
==========================  ====================================================================
@type, genre, mainEntity    resource_type ``{"id": "dataset"}``, ``publication-article``,
                            ``image-photo``, ``software``, ``workflow`` (a ComputationalWorkflow)
name (headline)             title
datePublished               publication_date, EDTF as precise as given (``2017``, ``2017-05``)
creator, author (root,      creators ``{"person_or_org": {...}, "affiliations": [{"name"}]}``:
then mainEntity)            Person -> personal (family/given name, ORCID), Organization ->
                            organizational (name, ROR); a bare name with a comma is a person
                            ``Family, Given``, without one an organisation
contributor, editor, ...    contributors, the same, with ``role`` other, editor, producer,
                            rightsholder, contactperson
description                 description, HTML-escaped, newlines as ``<br>``
license                     rights ``{"id": "<lower-case SPDX id>"}`` (``cc-by-4.0``,
                            ``cc0-1.0``); a ported CC licence the vocabulary lacks is a custom
                            right ``{"title": {"en": name}, "link": url}``; unknown: a 400
keywords                    subjects ``{"subject": ...}``
inLanguage                  languages ``{"id": "<ISO 639-3>"}``
citation, isBasedOn,        related_identifiers ``{"identifier", "scheme", "relation_type":
sameAs, isPartOf            {"id": "cites" | "isderivedfrom" | "isidenticalto" | "ispartof"}}``
identifier, @id (absolute)  identifiers ``{"identifier", "scheme"}`` (alternate identifiers)
funding (Grant), funder     funding ``{"funder": {"id": ROR} | {"name"}, "award": {"number",
                            "title"}}``
version, publisher          version, publisher
==========================  ====================================================================

Back (``inveniordm_to_crate``): an RO-Crate 1.1 that maps forward to the same metadata; the
record's DOI (``pids.doi``) becomes the root's ``identifier``, files ``hasPart`` entities.
"""

from __future__ import annotations

import html
import re
from typing import Any

from common.errors import BadRequest
from common.rocrate.graph import (
    ORGANIZATION,
    PERSON,
    Agent,
    Graph,
    agent_of,
    crate_document,
    date_published,
    doi_of,
    first_text,
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
    RELATION_PROPERTIES,
    SPDX_TO_ZENODO,
    license_key,
)

# The Zenodo writer's helpers are shared on purpose: the type vocabulary (see the module
# docstring), HTML to text, and the builder of organisations and file entities.
from common.rocrate.zenodo import CrateBuilder, plain_text, schema_types, upload_type_of

# Zenodo licence id -> SPDX id; InvenioRDM's licence ids are SPDX ids in lower case.
ZENODO_TO_SPDX = {v: k for k, v in SPDX_TO_ZENODO.items()}
SPDX_BY_ID = {k.lower(): k for k in SPDX_TO_ZENODO}
ROLES = {prop: kind.lower() for prop, kind in CONTRIBUTOR_PROPERTIES}
RELATIONS = {prop: rel.lower() for prop, rel in RELATION_PROPERTIES if prop != "identifier"}
# InvenioRDM field (first segment after ``metadata.``) -> RO-Crate property.
FIELD_TO_PROPERTY: dict[str, str] = {
    "resource_type": "@type",
    "title": "name",
    "publication_date": "datePublished",
    "creators": "creator",
    "contributors": "contributor",
    "description": "description",
    "rights": "license",
    "subjects": "keywords",
    "languages": "inLanguage",
    "identifiers": "identifier",
    "funding": "funding",
    "version": "version",
    "publisher": "publisher",
}
_ROR = re.compile(r"^(?:https?://)?ror\.org/(0[a-z0-9]{8})/?$", re.IGNORECASE)
_EDTF = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:[T ].*)?$")


# ---------------------------------------------------------------------------------------------
# RO-Crate -> InvenioRDM


def _ror(entity: dict[str, Any] | None) -> str | None:
    if entity is None:
        return None
    for value in [entity.get("@id"), *values_of(entity.get("identifier"))]:
        match = _ROR.match(text_of(value, "creator") or "")
        if match:
            return match.group(1).lower()
    return None


def person_or_org(agent: Agent, ror: str | None = None) -> dict[str, Any]:
    """InvenioRDM's ``person_or_org`` for one agent (see the module table)."""
    if agent.kind == ORGANIZATION or (agent.kind is None and "," not in agent.name):
        out: dict[str, Any] = {"type": "organizational", "name": agent.name}
        if ror:
            out["identifiers"] = [{"scheme": "ror", "identifier": ror}]
        return out
    family, given = agent.family, agent.given
    if family is None and given is None:
        family, _, given = (part.strip() for part in agent.name.partition(","))
    out = {"type": "personal", "family_name": family or given or agent.name}
    if given and family:
        out["given_name"] = given
    if agent.orcid:
        out["identifiers"] = [{"scheme": "orcid", "identifier": agent.orcid}]
    return out


def _people(graph: Graph, sources: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    """Creators (or one role's contributors) from the first source that names anyone."""
    for entity, prop in sources:
        out: list[dict[str, Any]] = []
        for value in values_of(entity.get(prop)):
            agent = agent_of(graph, value, prop)
            if agent is None:
                continue
            item: dict[str, Any] = {"person_or_org": person_or_org(agent, _ror(graph.get(value)))}
            if agent.kind == PERSON and agent.affiliations:
                item["affiliations"] = [{"name": a} for a in agent.affiliations]
            if item not in out:
                out.append(item)
        if out:
            return out
    return []


def _creators(graph: Graph, root: dict[str, Any]) -> list[dict[str, Any]]:
    main = graph.get(root.get("mainEntity"))
    sources = [(root, "creator"), (root, "author")]
    if main is not None:
        sources += [(main, "creator"), (main, "author")]
    return _people(graph, sources)


def _contributors(graph: Graph, root: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**item, "role": {"id": role}}
        for prop, role in ROLES.items()
        for item in _people(graph, [(root, prop)])
    ]


def _resource_type(graph: Graph, root: dict[str, Any]) -> dict[str, str]:
    main = graph.get(root.get("mainEntity"))
    if "ComputationalWorkflow" in types_of(root) + (types_of(main) if main else []):
        return {"id": "workflow"}
    zenodo = upload_type_of(graph, root)
    upload = zenodo["upload_type"]
    sub = zenodo.get("publication_type") or zenodo.get("image_type")
    return {"id": upload if sub in (None, "other") else f"{upload}-{sub}"}


def publication_date(root: dict[str, Any]) -> str | None:
    """``datePublished`` as EDTF, as precise as the crate gives it (``2017``, ``2017-05``)."""
    if date_published(root) is None:  # checks the values: a bad one is a 400 there
        return None
    for value in values_of(root.get("datePublished")):
        match = _EDTF.match(text_of(value, "datePublished") or "")
        if match:
            return "-".join(part for part in match.groups() if part)
    return None


def _rights(graph: Graph, root: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for value in license_values(graph, root):
        texts = list(license_texts(graph, value))
        right = next((r for r in map(_right_of, texts) if r), None)
        if right is None:
            raise BadRequest(
                f"license {texts[0] if texts else value!r} is not a licence InvenioRDM knows; "
                "give an SPDX id such as CC-BY-4.0 or a creativecommons.org URL",
                field="license",
            )
        if "title" in right:  # a ported licence: named as the crate names it
            right["title"] = {"en": label_of(graph, value, "license") or right["link"]}
        if right not in out:
            out.append(right)
    return out


def _right_of(text: str) -> dict[str, Any] | None:
    zenodo, note = license_key(text)
    if zenodo is None:
        return None
    if note:  # a ported CC licence: its own page, not the generic one
        return {"title": {}, "link": text}
    return {"id": ZENODO_TO_SPDX.get(zenodo, zenodo).lower()}


def scheme_of(identifier: str) -> str:
    """The InvenioRDM scheme of an identifier ``normalise_identifier`` gave."""
    if doi_of(identifier):
        return "doi"
    low = identifier.lower()
    for prefix, scheme in (("hdl:", "handle"), ("arxiv:", "arxiv"), ("urn:", "urn")):
        if low.startswith(prefix):
            return scheme
    if low.startswith(("ark:", "purl:")):
        return low.split(":", 1)[0]
    return "url"


def _identifiers(graph: Graph, root: dict[str, Any], prop: str) -> list[dict[str, str]]:
    values = values_of(root.get(prop))
    if prop == "identifier" and isinstance(root.get("@id"), str):
        values = [root["@id"], *values]  # a detached crate's URL
    out: list[dict[str, str]] = []
    for value in values:
        for text in identifier_texts(graph, value, prop):
            ident = normalise_identifier(text)
            if ident:
                entry = {"identifier": ident, "scheme": scheme_of(ident)}
                if entry not in out:
                    out.append(entry)
                break
    return out


def _related(graph: Graph, root: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**entry, "relation_type": {"id": relation}}
        for prop, relation in RELATIONS.items()
        for entry in _identifiers(graph, root, prop)
    ]


def _funder(graph: Graph, value: Any) -> dict[str, str] | None:
    ror = _ror(graph.get(value))
    if ror:
        return {"id": ror}
    name = label_of(graph, value, "funding")
    return {"name": name} if name else None


def _funding(graph: Graph, root: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for value in values_of(root.get("funding")):
        grant = graph.get(value)
        funders = values_of(grant.get("funder")) if grant is not None else []
        funder = next((f for f in (_funder(graph, v) for v in funders) if f), None)
        if grant is None or funder is None:
            continue  # InvenioRDM needs the funder; a grant without one has no place
        entry: dict[str, Any] = {"funder": funder}
        number = first_text(grant, "identifier")
        title = first_text(grant, "name") or number
        if number and title:
            entry["award"] = {"number": number, "title": {"en": title}}
        out.append(entry)
    for value in values_of(root.get("funder")):
        funder = _funder(graph, value)
        if funder and not any(e["funder"] == funder for e in out):
            out.append({"funder": funder})
    return out


def crate_to_inveniordm(crate: dict[str, Any]) -> dict[str, Any]:
    """InvenioRDM record ``metadata`` for an RO-Crate; what the crate lacks stays out."""
    graph = Graph(crate)
    root = root_of(graph)
    description = first_text(root, "description", "abstract")
    publisher = root.get("publisher")
    values: dict[str, Any] = {
        "resource_type": _resource_type(graph, root),
        "title": first_text(root, "name", "headline"),
        "publication_date": publication_date(root),
        "creators": _creators(graph, root),
        "contributors": _contributors(graph, root),
        "description": html.escape(description, quote=False)
        .replace("\r\n", "\n")
        .replace("\n", "<br>")
        if description
        else None,
        "rights": _rights(graph, root),
        "subjects": [{"subject": k} for k in keywords(graph, root)],
        "languages": [{"id": c} for c in dict.fromkeys(languages(graph, root))],
        "identifiers": _identifiers(graph, root, "identifier"),
        "related_identifiers": _related(graph, root),
        "funding": _funding(graph, root),
        "version": first_text(root, "version"),
        "publisher": label_of(graph, publisher, "publisher") if publisher else None,
    }
    return {k: v for k, v in values.items() if v}


# ---------------------------------------------------------------------------------------------
# Back: InvenioRDM -> RO-Crate


def _list(metadata: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = metadata.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _id_of(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) and isinstance(value.get("id"), str) else None


def _en(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("en") or next(iter(value.values()), None)
    return value if isinstance(value, str) and value else None


def _url(ident: str) -> str:
    doi = doi_of(ident)
    return f"https://doi.org/{doi}" if doi else ident


class _Back(CrateBuilder):
    """The entities of the crate ``inveniordm_to_crate`` builds."""

    def org(self, name: str | None, ror: str | None) -> dict[str, str] | None:
        if ror:
            return self.add(
                {"@id": f"https://ror.org/{ror}", "@type": "Organization", "name": name}
            )
        return self.organization(name) if name else None

    def agent(self, item: Any, prefix: str, index: int) -> dict[str, str] | None:
        po = item.get("person_or_org") if isinstance(item, dict) else None
        if not isinstance(po, dict):
            return None
        schemes = {
            str(i.get("scheme")): str(i.get("identifier"))
            for i in po.get("identifiers") or []
            if isinstance(i, dict)
        }
        if po.get("type") == "organizational":
            return self.org(po.get("name"), schemes.get("ror"))
        family, given = po.get("family_name"), po.get("given_name")
        if not family:
            return None
        orcid = orcid_of(schemes.get("orcid"))
        person: dict[str, Any] = {
            "@id": f"https://orcid.org/{orcid}" if orcid else f"#{prefix}-{index}",
            "@type": "Person",
            "name": f"{given} {family}" if given else family,
            "familyName": family,
        }
        if given:
            person["givenName"] = given
        affiliations = [self.org(a.get("name"), None) for a in _list(item, "affiliations")]
        if any(affiliations):
            person["affiliation"] = [a for a in affiliations if a]
        return self.add(person)

    def people(self, metadata: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, item in enumerate(_list(metadata, "creators")):
            ref = self.agent(item, "creator", i)
            if ref:
                out.setdefault("creator", []).append(ref)
        by_role = {role: prop for prop, role in ROLES.items()}
        for i, item in enumerate(_list(metadata, "contributors")):
            ref = self.agent(item, "contributor", i)
            if ref:
                prop = by_role.get(_id_of(item.get("role")) or "", "contributor")
                out.setdefault(prop, []).append(ref)
        return out

    def rights(self, metadata: dict[str, Any]) -> dict[str, Any]:
        refs = []
        for right in _list(metadata, "rights"):
            rid, title = _id_of(right), _en(right.get("title"))
            if rid:
                spdx = SPDX_BY_ID.get(rid, rid)
                entity = {"@id": f"https://spdx.org/licenses/{spdx}", "@type": "CreativeWork"}
                refs.append(self.add({**entity, "identifier": spdx, "name": title or spdx}))
            elif isinstance(right.get("link"), str):
                named = {"name": title} if title else {}
                refs.append(self.add({"@id": right["link"], "@type": "CreativeWork", **named}))
        return {"license": refs[0] if len(refs) == 1 else refs} if refs else {}

    def grants(self, metadata: dict[str, Any]) -> dict[str, Any]:
        grants, funders = [], []
        for item in _list(metadata, "funding"):
            funder: dict[str, Any] = item["funder"] if isinstance(item.get("funder"), dict) else {}
            ref = self.org(funder.get("name"), funder.get("id"))
            award: dict[str, Any] = item["award"] if isinstance(item.get("award"), dict) else {}
            number, title = award.get("number"), _en(award.get("title"))
            if ref is None:
                continue
            if not number:
                funders.append(ref)
                continue
            grant = {"@id": f"#grant-{number}", "@type": "Grant", "identifier": number}
            grants.append(self.add({**grant, "name": title or number, "funder": ref}))
        return {k: v for k, v in (("funding", grants), ("funder", funders)) if v}


def _type_back(metadata: dict[str, Any]) -> dict[str, Any]:
    rtype = _id_of(metadata.get("resource_type")) or "dataset"
    if rtype == "workflow":
        return {"@type": ["Dataset", "ComputationalWorkflow"]}
    upload, _, sub = rtype.partition("-")
    key = "image_type" if upload == "image" else "publication_type"
    return schema_types({"upload_type": upload, key: sub or None})


def _relations_back(record: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, list[Any]] = {}
    doi = ((record.get("pids") or {}).get("doi") or {}).get("identifier")
    for ident in ([doi] if doi else []) + [
        i.get("identifier") for i in _list(metadata, "identifiers")
    ]:
        if isinstance(ident, str) and _url(ident) not in out.get("identifier", []):
            out.setdefault("identifier", []).append(_url(ident))
    by_relation = {rel: prop for prop, rel in RELATIONS.items()}
    for item in _list(metadata, "related_identifiers"):
        prop = by_relation.get(_id_of(item.get("relation_type")) or "")
        if prop and isinstance(item.get("identifier"), str):
            out.setdefault(prop, []).append({"@id": _url(item["identifier"])})
    if len(out.get("identifier", [])) == 1:
        return {**out, "identifier": out["identifier"][0]}
    return out


def inveniordm_to_crate(
    record: dict[str, Any], *, files: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An RO-Crate 1.1 describing an InvenioRDM record (or draft) and its files."""
    metadata = record.get("metadata") if isinstance(record, dict) else None
    if not isinstance(metadata, dict):
        metadata = {}
    build = _Back()
    description = metadata.get("description")
    literals = {
        "name": metadata.get("title"),
        "description": plain_text(description) if isinstance(description, str) else None,
        "datePublished": metadata.get("publication_date"),
        "keywords": [s["subject"] for s in _list(metadata, "subjects") if s.get("subject")],
        "inLanguage": [i for i in map(_id_of, _list(metadata, "languages")) if i],
        "version": metadata.get("version"),
        "publisher": build.org(metadata["publisher"], None) if metadata.get("publisher") else None,
    }
    root: dict[str, Any] = {
        "@id": "./",
        "@type": "Dataset",
        **_type_back(metadata),
        **{k: v for k, v in literals.items() if v},
        **build.people(metadata),
        **build.rights(metadata),
        **build.grants(metadata),
        **_relations_back(record, metadata),
        **build.files(files),
    }
    return crate_document(root, list(build.entities.values()))


# ---------------------------------------------------------------------------------------------
# Errors


def crate_property_for(field: str, *, metadata: dict[str, Any] | None = None) -> str:
    """The RO-Crate property behind an InvenioRDM error field
    (``metadata.creators.0.person_or_org.family_name`` -> ``creator``)."""
    parts = str(field or "").split(".")
    if parts[0] in ("files", "pids"):
        return {"files": "files", "pids": "identifier"}[parts[0]]
    if parts[0] != "metadata" or len(parts) < 2:
        return "metadata"
    name = parts[1]
    entry = None
    if len(parts) > 2 and parts[2].isdigit():
        items = (metadata or {}).get(name)
        if isinstance(items, list) and int(parts[2]) < len(items):
            entry = items[int(parts[2])]
    if name == "contributors":
        role = _id_of(entry.get("role")) if isinstance(entry, dict) else None
        return next((p for p, r in ROLES.items() if r == role), "contributor")
    if name == "related_identifiers":
        rel = _id_of(entry.get("relation_type")) if isinstance(entry, dict) else None
        return next((p for p, r in RELATIONS.items() if r == rel), "citation")
    return FIELD_TO_PROPERTY.get(name, "metadata")


def field_of_value(metadata: dict[str, Any], value: str) -> str | None:
    """The dotted field (``metadata.rights.0.id``) holding ``value`` -- to name the property
    behind InvenioRDM's "Invalid value <id>." answer, which names no field."""

    def walk(node: Any, path: str) -> str | None:
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            return path if node == value else None
        for key, sub in items:
            found = walk(sub, f"{path}.{key}")
            if found:
                return found
        return None

    return walk(metadata, "metadata")
