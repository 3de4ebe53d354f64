"""RO-Crate metadata: read a crate once, write it for one archive, read an archive back.

Boundary: pure functions from one JSON document to another (no HTTP, no web framework);
bad input is a ``common.errors.BadRequest`` naming the RO-Crate property at fault.

- ``graph``: reading a crate -- the root through the metadata descriptor, the entity index,
  texts, agents, licences, dates, languages, funders, identifiers, keywords. Target-neutral.
- ``vocab``: the tables -- licences (SPDX -> Zenodo), upload/publication/image types,
  ISO 639 languages, funders, relation and contributor properties.
- ``zenodo``: RO-Crate -> Zenodo deposition metadata (``crate_to_zenodo``) and back
  (``zenodo_to_crate``, ``crate_property_for``).

A writer for another archive is one more module beside ``zenodo`` that reads through
``graph`` and ``vocab``. The names below are the package's public surface, as they were
when it was one module.
"""

from __future__ import annotations

from common.rocrate.graph import (
    DESCRIPTOR_NAMES,
    MAX_DEPTH,
    MAX_ENTITIES,
    MAX_LIST,
    MAX_TEXT,
    ROOT_ALIASES,
    SPEC_PREFIXES,
    doi_of,
    family_given_of,
    find_root,
    normalise_identifier,
    orcid_of,
    parse_date,
)
from common.rocrate.vocab import (
    CONTRIBUTOR_PROPERTIES,
    CONTRIBUTOR_TYPES,
    GENERIC_TYPE,
    IMAGE_TYPES,
    LANGUAGE_BIBLIOGRAPHIC,
    LANGUAGE_NAMES,
    LANGUAGES,
    LICENSE_ALIASES,
    LICENSE_TABLE,
    LICENSE_URLS,
    NAME_PARTICLES,
    ORGANIZATION_TYPES,
    PUBLICATION_TYPES,
    RELATION_PROPERTIES,
    REVERSE_TYPE,
    ROR_TO_FUNDER_DOI,
    SPDX_TO_ZENODO,
    TYPE_TABLE,
    UPLOAD_TYPES,
)
from common.rocrate.zenodo import (
    DEFAULT_TITLE,
    DEFAULT_UPLOAD_TYPE,
    FIELD_TO_PROPERTY,
    UNKNOWN_CREATOR,
    crate_property_for,
    crate_to_zenodo,
    zenodo_to_crate,
)

__all__ = [
    "CONTRIBUTOR_PROPERTIES",
    "CONTRIBUTOR_TYPES",
    "DEFAULT_TITLE",
    "DEFAULT_UPLOAD_TYPE",
    "DESCRIPTOR_NAMES",
    "FIELD_TO_PROPERTY",
    "GENERIC_TYPE",
    "IMAGE_TYPES",
    "LANGUAGES",
    "LANGUAGE_BIBLIOGRAPHIC",
    "LANGUAGE_NAMES",
    "LICENSE_ALIASES",
    "LICENSE_TABLE",
    "LICENSE_URLS",
    "MAX_DEPTH",
    "MAX_ENTITIES",
    "MAX_LIST",
    "MAX_TEXT",
    "NAME_PARTICLES",
    "ORGANIZATION_TYPES",
    "PUBLICATION_TYPES",
    "RELATION_PROPERTIES",
    "REVERSE_TYPE",
    "ROOT_ALIASES",
    "ROR_TO_FUNDER_DOI",
    "SPDX_TO_ZENODO",
    "SPEC_PREFIXES",
    "TYPE_TABLE",
    "UNKNOWN_CREATOR",
    "UPLOAD_TYPES",
    "crate_property_for",
    "crate_to_zenodo",
    "doi_of",
    "family_given_of",
    "find_root",
    "normalise_identifier",
    "orcid_of",
    "parse_date",
    "zenodo_to_crate",
]
