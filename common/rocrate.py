"""RO-Crate <-> Zenodo deposition metadata, as pure functions (no HTTP, no web framework).

Boundary: this module only turns one JSON document into another. It never talks to Zenodo,
never reads files, and raises only ``common.errors.BadRequest`` (naming the RO-Crate
property at fault in ``field``) for input it cannot map. The Zenodo backend calls
``crate_to_zenodo`` on PATCH, ``zenodo_to_crate`` on GET, and ``crate_property_for`` to
turn a Zenodo validation error (``metadata.creators.0.name``) into the property the user
wrote (``creator``).

Finding the root (RO-Crate 1.0, 1.1, 1.2): the metadata descriptor is the ``@graph`` entity
``ro-crate-metadata.json`` (legacy ``ro-crate-metadata.jsonld``, or a URL ending in either)
whose ``conformsTo`` names ``https://w3id.org/ro/crate/...``; its ``about`` names the root
data entity. A descriptor without ``conformsTo`` is accepted only when none has one.

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
                            ``sourceOrganization``, else ``[{"name": "Unknown"}]``
contributor, editor,        contributors with type Other, Editor, Producer, RightsHolder,
producer, copyrightHolder   ContactPerson
accountablePerson
license                     license id (``cc-by-4.0``, ``cc-zero``, ``mit`` ...); ported CC
                            licences Zenodo lacks map to the generic one plus a
                            ``Licence: URL`` note; none on the root: the one licence all
                            licensed ``hasPart`` entities share; default ``cc-by-4.0``
                            (access is always ``open``); an unknown licence is a 400
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

``access_right`` is always ``open`` (RDS publishes open data). Names given only as ``name``
are turned around at the last space (``Josiah Carberry`` -> ``Carberry, Josiah``). ORCIDs
are accepted from ``@id`` or ``identifier`` (URL or bare) and kept only when their check
digit is right. Guards: at most ``MAX_ENTITIES`` entities, texts of at most
``MAX_TEXT`` characters, lists of at most ``MAX_LIST`` values, reference chains of at most
``MAX_DEPTH`` steps; a cycle of references is a 400 naming the property. Tolerated as
found in real crates: repeated ``@id`` entities (merged), strings that are an entity's
``@id`` (read as references), literals in ``{"@value": ...}``.

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
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from common.errors import BadRequest

MAX_ENTITIES = 100_000
MAX_TEXT = 1_000_000
MAX_DEPTH = 32
MAX_LIST = 10_000

DESCRIPTOR_NAMES = ("ro-crate-metadata.json", "ro-crate-metadata.jsonld")
SPEC_PREFIXES = ("https://w3id.org/ro/crate/", "http://w3id.org/ro/crate/")
ROOT_ALIASES = ("./", ".")

DEFAULT_TITLE = "Untitled"
DEFAULT_LICENSE = "cc-by-4.0"
DEFAULT_UPLOAD_TYPE = "dataset"
UNKNOWN_CREATOR = "Unknown"

# ---------------------------------------------------------------------------------------------
# Zenodo vocabularies (classic deposition API).

UPLOAD_TYPES = (
    "publication",
    "poster",
    "presentation",
    "dataset",
    "image",
    "video",
    "software",
    "lesson",
    "physicalobject",
    "other",
)
PUBLICATION_TYPES = (
    "annotationcollection",
    "book",
    "section",
    "conferencepaper",
    "datamanagementplan",
    "article",
    "patent",
    "preprint",
    "deliverable",
    "milestone",
    "proposal",
    "report",
    "softwaredocumentation",
    "taxonomictreatment",
    "technicalnote",
    "thesis",
    "workingpaper",
    "other",
)
IMAGE_TYPES = ("figure", "plot", "drawing", "diagram", "photo", "other")
CONTRIBUTOR_TYPES = (
    "ContactPerson",
    "DataCollector",
    "DataCurator",
    "DataManager",
    "Distributor",
    "Editor",
    "HostingInstitution",
    "Producer",
    "ProjectLeader",
    "ProjectManager",
    "ProjectMember",
    "RegistrationAgency",
    "RegistrationAuthority",
    "RelatedPerson",
    "Researcher",
    "ResearchGroup",
    "RightsHolder",
    "Supervisor",
    "Sponsor",
    "WorkPackageLeader",
    "Other",
)

# schema.org type -> (upload_type, subtype or None); the first non-Dataset match wins.
TYPE_TABLE: dict[str, tuple[str, str | None]] = {
    "SoftwareSourceCode": ("software", None),
    "SoftwareApplication": ("software", None),
    "ComputationalWorkflow": ("software", None),
    "ScholarlyArticle": ("publication", "article"),
    "Article": ("publication", "article"),
    "NewsArticle": ("publication", "article"),
    "TechArticle": ("publication", "technicalnote"),
    "Report": ("publication", "report"),
    "Thesis": ("publication", "thesis"),
    "Book": ("publication", "book"),
    "Chapter": ("publication", "section"),
    "Photograph": ("image", "photo"),
    "ImageObject": ("image", "other"),
    "VideoObject": ("video", None),
    "MovieClip": ("video", None),
    "PresentationDigitalDocument": ("presentation", None),
    "Course": ("lesson", None),
    "LearningResource": ("lesson", None),
    "Product": ("physicalobject", None),
    "Dataset": ("dataset", None),
    "DataCatalog": ("dataset", None),
    "CreativeWork": ("other", None),
}
# (upload_type, subtype) -> schema.org type written back by zenodo_to_crate.
REVERSE_TYPE: dict[tuple[str, str | None], str] = {
    ("software", None): "SoftwareSourceCode",
    ("publication", "article"): "ScholarlyArticle",
    ("publication", "technicalnote"): "TechArticle",
    ("publication", "report"): "Report",
    ("publication", "thesis"): "Thesis",
    ("publication", "book"): "Book",
    ("publication", "section"): "Chapter",
    ("image", "photo"): "Photograph",
    ("image", "other"): "ImageObject",
    ("video", None): "VideoObject",
    ("presentation", None): "PresentationDigitalDocument",
    ("lesson", None): "LearningResource",
    ("physicalobject", None): "Product",
}

# upload_type -> schema.org type when no (upload_type, subtype) pair above names one.
GENERIC_TYPE: dict[str, str] = {"publication": "ScholarlyArticle", "image": "ImageObject"}

# SPDX id -> Zenodo licence id. Zenodo's ids are SPDX ids in lower case (its licence
# vocabulary), except CC0 which the classic API calls ``cc-zero``. Only ids that Zenodo's
# classic API maps are listed: it answers an unknown id with an error, not a 400. Deprecated
# SPDX ids (``GPL-3.0``) are sent as their ``-only`` form: Zenodo's legacy alias table maps
# ``gpl-3.0`` to GPL-2.0.
SPDX_TO_ZENODO: dict[str, str] = {
    "CC0-1.0": "cc-zero",
    "CC-PDDC": "cc-pddc",
    "PDDL-1.0": "pddl-1.0",
    "ODC-By-1.0": "odc-by-1.0",
    "ODbL-1.0": "odbl-1.0",
    "MIT": "mit",
    "Apache-2.0": "apache-2.0",
    "BSD-2-Clause": "bsd-2-clause",
    "BSD-3-Clause": "bsd-3-clause",
    "GPL-2.0-only": "gpl-2.0-only",
    "GPL-2.0-or-later": "gpl-2.0-or-later",
    "GPL-3.0-only": "gpl-3.0-only",
    "GPL-3.0-or-later": "gpl-3.0-or-later",
    "LGPL-2.1-only": "lgpl-2.1-only",
    "LGPL-2.1-or-later": "lgpl-2.1-or-later",
    "LGPL-3.0-only": "lgpl-3.0-only",
    "LGPL-3.0-or-later": "lgpl-3.0-or-later",
    "AGPL-3.0-only": "agpl-3.0-only",
    "AGPL-3.0-or-later": "agpl-3.0-or-later",
    "MPL-2.0": "mpl-2.0",
    "EPL-2.0": "epl-2.0",
    "EUPL-1.2": "eupl-1.2",
    "ISC": "isc",
    "Unlicense": "unlicense",
    "Artistic-2.0": "artistic-2.0",
    "BSL-1.0": "bsl-1.0",
    "Zlib": "zlib",
    "0BSD": "0bsd",
    "MIT-0": "mit-0",
    "Apache-1.1": "apache-1.1",
    "BSD-4-Clause": "bsd-4-clause",
    "EPL-1.0": "epl-1.0",
    "MPL-1.1": "mpl-1.1",
    "EUPL-1.1": "eupl-1.1",
    "CECILL-2.1": "cecill-2.1",
    "CECILL-B": "cecill-b",
    "CECILL-C": "cecill-c",
    "OFL-1.1": "ofl-1.1",
    "WTFPL": "wtfpl",
    "PostgreSQL": "postgresql",
    "X11": "x11",
    "NCSA": "ncsa",
    "UPL-1.0": "upl-1.0",
    "AFL-3.0": "afl-3.0",
    "ECL-2.0": "ecl-2.0",
    "LPPL-1.3c": "lppl-1.3c",
    "ZPL-2.1": "zpl-2.1",
    "CERN-OHL-P-2.0": "cern-ohl-p-2.0",
    "CERN-OHL-S-2.0": "cern-ohl-s-2.0",
    "CERN-OHL-W-2.0": "cern-ohl-w-2.0",
    "CDLA-Permissive-1.0": "cdla-permissive-1.0",
    "CDLA-Sharing-1.0": "cdla-sharing-1.0",
    "O-UDA-1.0": "o-uda-1.0",
    "NLOD-1.0": "nlod-1.0",
    "OGL-UK-3.0": "ogl-uk-3.0",
    "etalab-2.0": "etalab-2.0",
    # The only ported CC licences in Zenodo's vocabulary; other ports map to the generic one.
    "CC-BY-3.0-AT": "cc-by-3.0-at",
    "CC-BY-3.0-US": "cc-by-3.0-us",
    "CC-BY-SA-3.0-AT": "cc-by-sa-3.0-at",
    "CC-BY-SA-2.0-UK": "cc-by-sa-2.0-uk",
    "CC-BY-NC-ND-3.0-IGO": "cc-by-nc-nd-3.0-igo",
    **{
        f"CC-{kind}-{version}": f"cc-{kind.lower()}-{version}"
        for kind in ("BY", "BY-SA", "BY-ND", "BY-NC", "BY-NC-SA", "BY-NC-ND")
        for version in ("1.0", "2.0", "2.5", "3.0", "4.0")
    },
}
# Lower-case SPDX id -> Zenodo id, plus deprecated SPDX ids.
LICENSE_TABLE: dict[str, str] = {
    **{k.lower(): v for k, v in SPDX_TO_ZENODO.items()},
    "gpl-2.0": "gpl-2.0-only",
    "gpl-3.0": "gpl-3.0-only",
    "lgpl-2.1": "lgpl-2.1-only",
    "lgpl-3.0": "lgpl-3.0-only",
    "agpl-3.0": "agpl-3.0-only",
}
# Other ways of naming the same licences (lower case, after normalisation).
LICENSE_ALIASES: dict[str, str] = {
    "cc0": "cc0-1.0",
    "cc-zero": "cc0-1.0",
    "creative-commons-zero-v1.0-universal": "cc0-1.0",
    "cc0-1.0-universal": "cc0-1.0",
    "apache-license-2.0": "apache-2.0",
    "apache-license-version-2.0": "apache-2.0",
    "apache-2": "apache-2.0",
    "mit-license": "mit",
    "the-mit-license": "mit",
    "bsd-3-clause-license": "bsd-3-clause",
    "bsd-2-clause-license": "bsd-2-clause",
}
# "Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International", normalised.
_CC_NAME = re.compile(
    r"^creative-commons-attribution(-noncommercial)?(-sharealike|-noderivatives|-noderivs)?"
    r"-(\d\.\d)(?:-international|-unported|-generic)?$"
)
_CC_URL = re.compile(
    r"^https?://(?:www\.)?creativecommons\.org/(licenses|publicdomain)/"
    r"([a-z-]+)/(\d\.\d)(?:/([a-z]{2,3}))?/?(?:legalcode(?:\.[a-z-]+)?)?/?$",
    re.IGNORECASE,
)
_SPDX_URL = re.compile(
    r"^https?://(?:www\.)?spdx\.org/licenses/([A-Za-z0-9.+-]+?)(?:\.html|\.json)?/?$"
)
_OSI_URL = re.compile(r"^https?://(?:www\.)?opensource\.org/licenses?/([A-Za-z0-9.+-]+?)/?$")
# Licence pages of their stewards -> SPDX id.
LICENSE_URLS: dict[str, str] = {
    "apache.org/licenses/license-2.0": "apache-2.0",
    "gnu.org/licenses/gpl-3.0": "gpl-3.0-only",
    "gnu.org/licenses/gpl-2.0": "gpl-2.0-only",
    "gnu.org/licenses/lgpl-3.0": "lgpl-3.0-only",
    "gnu.org/licenses/lgpl-2.1": "lgpl-2.1-only",
    "gnu.org/licenses/agpl-3.0": "agpl-3.0-only",
    "mozilla.org/mpl/2.0": "mpl-2.0",
    "opendatacommons.org/licenses/odbl/1-0": "odbl-1.0",
    "opendatacommons.org/licenses/by/1-0": "odc-by-1.0",
    "opendatacommons.org/licenses/pddl/1-0": "pddl-1.0",
    "joinup.ec.europa.eu/collection/eupl/eupl-text-eupl-12": "eupl-1.2",
}
_CC_ID = re.compile(r"^cc-(by(?:-nc)?(?:-sa|-nd)?)-(\d\.\d)(?:-([a-z]{2,3}))?$")

# ISO 639-1 -> ISO 639-3 (the terminological codes Zenodo's vocabulary uses).
LANGUAGES: dict[str, str] = {
    "en": "eng", "de": "deu", "fr": "fra", "es": "spa", "it": "ita", "pt": "por",
    "nl": "nld", "da": "dan", "sv": "swe", "no": "nor", "nb": "nob", "nn": "nno",
    "fi": "fin", "is": "isl", "pl": "pol", "cs": "ces", "sk": "slk", "sl": "slv",
    "hr": "hrv", "sr": "srp", "bs": "bos", "hu": "hun", "ro": "ron", "bg": "bul",
    "el": "ell", "ru": "rus", "uk": "ukr", "be": "bel", "lt": "lit", "lv": "lav",
    "et": "est", "ga": "gle", "cy": "cym", "eu": "eus", "ca": "cat", "gl": "glg",
    "tr": "tur", "ar": "ara", "he": "heb", "fa": "fas", "hi": "hin", "bn": "ben",
    "ur": "urd", "zh": "zho", "ja": "jpn", "ko": "kor", "vi": "vie", "th": "tha",
    "id": "ind", "ms": "msa", "sw": "swa", "la": "lat", "mt": "mlt", "lb": "ltz",
    "sq": "sqi", "mk": "mkd", "ka": "kat", "hy": "hye", "af": "afr", "eo": "epo",
}  # fmt: skip
LANGUAGE_NAMES: dict[str, str] = {
    "english": "eng", "german": "deu", "deutsch": "deu", "french": "fra", "spanish": "spa",
    "italian": "ita", "portuguese": "por", "dutch": "nld", "chinese": "zho",
    "japanese": "jpn", "russian": "rus", "polish": "pol", "swedish": "swe",
}  # fmt: skip
# ISO 639-2 bibliographic codes -> terminological ones.
LANGUAGE_BIBLIOGRAPHIC: dict[str, str] = {
    "ger": "deu", "fre": "fra", "dut": "nld", "cze": "ces", "slo": "slk", "gre": "ell",
    "rum": "ron", "chi": "zho", "per": "fas", "ice": "isl", "wel": "cym", "baq": "eus",
    "alb": "sqi", "mac": "mkd", "geo": "kat", "arm": "hye", "may": "msa",
}  # fmt: skip

# Lower-case words that belong to the family name that follows them.
NAME_PARTICLES = frozenset(
    {"van", "von", "der", "den", "de", "del", "della", "di", "da", "das", "dos", "du"}
    | {"la", "le", "ten", "ter", "zu", "ó", "bin", "ibn"}
)
# schema.org types (besides *Organization) of agents that are not people.
ORGANIZATION_TYPES = frozenset({"corporation", "ngo", "project", "consortium", "fundingscheme"})

# ROR id -> Crossref Funder DOI of the funders Zenodo knows by both (zenodo-rdm's legacy
# deserializer keeps the same pairs), so a crate naming its funder by ROR, as RO-Crate
# recommends for organisations, still yields a Zenodo grant.
ROR_TO_FUNDER_DOI: dict[str, str] = {
    "00k4n6c32": "10.13039/501100000780",  # European Commission
    "00rbzpz17": "10.13039/501100001665",  # Agence Nationale de la Recherche
    "05k73zm37": "10.13039/501100002341",  # Research Council of Finland
    "05mmh0f86": "10.13039/501100000923",  # Australian Research Council
    "02k4b9v70": "10.13039/501100000806",  # European Environment Agency
    "00snfqn58": "10.13039/501100001871",  # Fundação para a Ciência e a Tecnologia
    "013tf3c58": "10.13039/501100002428",  # Austrian Science Fund
    "03n51vw80": "10.13039/501100004488",  # Croatian Science Foundation
    "01znas443": "10.13039/501100004564",  # Ministry of Education, Science (Serbia)
    "011kf5r70": "10.13039/501100000925",  # National Health and Medical Research Council
    "01cwqze88": "10.13039/100000002",  # National Institutes of Health
    "01h531d29": "10.13039/501100000038",  # NSERC
    "021nxhr62": "10.13039/100000001",  # National Science Foundation
    "04jsz6e67": "10.13039/501100003246",  # Dutch Research Council (NWO)
    "001aqnf71": "10.13039/100014013",  # UK Research and Innovation
    "0271asj38": "10.13039/501100001602",  # Science Foundation Ireland
    "00yjd3n13": "10.13039/501100001711",  # Swiss National Science Foundation
    "006cvnv84": "10.13039/100001345",  # SSHRC
    "04w9kkr77": "10.13039/501100004410",  # TÜBİTAK
    "029chgv08": "10.13039/100004440",  # Wellcome Trust
    "03m8vkq32": "10.13039/501100006364",  # Institut National du Cancer
}

# Root properties that become Zenodo contributors, with their contributor type.
CONTRIBUTOR_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("contributor", "Other"),
    ("editor", "Editor"),
    ("producer", "Producer"),
    ("copyrightHolder", "RightsHolder"),
    ("accountablePerson", "ContactPerson"),
)

# Root properties that become related identifiers, with their Zenodo relation.
RELATION_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("citation", "cites"),
    ("isBasedOn", "isDerivedFrom"),
    ("identifier", "isAlternateIdentifier"),
    ("sameAs", "isIdenticalTo"),
    ("isPartOf", "isPartOf"),
)

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

_ORCID = re.compile(r"(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
_DOI = re.compile(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)
_FUNDER_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/)?(10\.13039/\d+)$", re.IGNORECASE)
_ROR = re.compile(r"^(?:https?://)?ror\.org/(0[a-z0-9]{8})/?$", re.IGNORECASE)
_ZENODO_DOI = re.compile(r"^10\.(5281|5072)/zenodo\.\d+$", re.IGNORECASE)
_HANDLE = re.compile(r"^(?:hdl:|https?://hdl\.handle\.net/)(\d[\w.]*/\S+)$", re.IGNORECASE)
_ARXIV = re.compile(r"^(?:arxiv:|https?://arxiv\.org/abs/)(\d{4}\.\d{4,5}(?:v\d+)?)$", re.I)
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:[T ].*)?$")
_TAG = re.compile(r"<[^>]*>")
_URI = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|mailto:|urn:|doi:|info:)", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# The graph


class _Graph:
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


def _values(value: Any) -> list[Any]:
    """A JSON-LD property value as a list (single values and lists alike)."""
    if value is None:
        return []
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            raise BadRequest(f"a list has more than {MAX_LIST} values", field="metadata")
        return value
    return [value]


def _types(entity: dict[str, Any]) -> list[str]:
    return [t for t in _values(entity.get("@type")) if isinstance(t, str)]


def _ref_ids(value: Any) -> list[str]:
    return [
        v["@id"] for v in _values(value) if isinstance(v, dict) and isinstance(v.get("@id"), str)
    ] + [v for v in _values(value) if isinstance(v, str)]


def _is_spec(value: Any) -> bool:
    return any(i.startswith(SPEC_PREFIXES) for i in _ref_ids(value))


def _is_descriptor_id(ident: str) -> bool:
    return ident in DESCRIPTOR_NAMES or ident.endswith(tuple("/" + n for n in DESCRIPTOR_NAMES))


def _root_of(graph: _Graph) -> dict[str, Any]:
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
    ids = _ref_ids(about)
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
    return _root_of(_Graph(crate))


# ---------------------------------------------------------------------------------------------
# Values


def _text(value: Any, prop: str) -> str | None:
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


def _first_text(entity: dict[str, Any], *props: str) -> str | None:
    for prop in props:
        for value in _values(entity.get(prop)):
            text = _text(value, prop)
            if text:
                return text
    return None


def _entity_label(graph: _Graph, value: Any, prop: str) -> str | None:
    """A human name for a literal or referenced entity (``name``, else its id or url)."""
    entity = graph.get(value)
    if entity is None:
        return _text(value, prop)
    return _first_text(entity, "name", "legalName", "alternateName", "@id")


def parse_date(value: Any) -> str | None:
    """``YYYY-MM-DD`` from a full or partial ISO date or datetime, or ``None``."""
    text = _text(value, "datePublished")
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
    text = _text(value, "creator")
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
    """An identifier in the form Zenodo's scheme detection recognises, or ``None``."""
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


def _family_given(entity: dict[str, Any]) -> str | None:
    family = _first_text(entity, "familyName")
    given = _first_text(entity, "givenName")
    if family and given:
        return f"{family}, {given}"
    if family or given:
        return family or given
    name = _first_text(entity, "name")
    if not name:
        return None
    return family_given_of(name)


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


def _is_organization(entity: dict[str, Any]) -> bool:
    for kind in _types(entity):
        low = kind.rsplit(":", 1)[-1].rsplit("#", 1)[-1].rsplit("/", 1)[-1].lower()
        if low.endswith(("organization", "organisation")) or low in ORGANIZATION_TYPES:
            return True
    return False


def _agent(graph: _Graph, value: Any, prop: str) -> dict[str, str] | None:
    """One Zenodo creator/contributor from a Person, an Organization or a bare name."""
    entity = graph.get(value)
    text = _text(value, prop) if entity is None else None
    if text:
        # A literal name. A URL is an identifier, not a name: without an entity to name
        # it, Zenodo would show the URL as a person.
        return None if _URI.match(text) else {"name": text}
    if entity is None:
        return None
    if _is_organization(entity):
        name = _first_text(entity, "name", "legalName", "alternateName")
        return {"name": name} if name else None
    name = _family_given(entity)
    if not name:
        return None
    agent = {"name": name}
    orcid = None
    for candidate in [entity.get("@id"), *_values(entity.get("identifier"))]:
        found = graph.get(candidate)  # a PropertyValue, by reference or nested
        if found is not None:
            candidate = found.get("value") or found.get("@id")
        orcid = orcid_of(candidate)
        if orcid:
            break
    affiliations = []
    for aff in _values(entity.get("affiliation")):
        label = _entity_label(graph, aff, prop)
        if label and label not in affiliations:
            affiliations.append(label)
    if affiliations:
        agent["affiliation"] = "; ".join(affiliations)
    if orcid:
        agent["orcid"] = orcid
    return agent


def _agents(graph: _Graph, root: dict[str, Any], prop: str) -> list[dict[str, str]]:
    agents = []
    for value in _values(root.get(prop)):
        agent = _agent(graph, value, prop)
        if agent and agent not in agents:
            agents.append(agent)
    return agents


def _creators(graph: _Graph, root: dict[str, Any]) -> list[dict[str, str]]:
    """Every creator; else the authors of the main entity (a workflow's), else the publisher."""
    main = graph.get(root.get("mainEntity"))
    sources = [(root, "creator"), (root, "author")]
    if main is not None:
        sources += [(main, "creator"), (main, "author")]
    sources += [(root, "publisher"), (root, "sourceOrganization")]
    for entity, prop in sources:
        agents = _agents(graph, entity, prop)
        if agents:
            return agents
    return [{"name": UNKNOWN_CREATOR}]


def _contributors(graph: _Graph, root: dict[str, Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for prop, kind in CONTRIBUTOR_PROPERTIES:
        for agent in _agents(graph, root, prop):
            out.append({**agent, "type": kind})
    return out


# ---------------------------------------------------------------------------------------------
# Licence, type, language, funding, relations


def _cc_license(
    kind: str, code: str, version: str, port: str | None, *, text: str
) -> tuple[str | None, str | None]:
    """A creativecommons.org URL's licence; a port Zenodo lacks becomes generic plus a note."""
    spdx = "cc0-1.0" if kind.lower() == "publicdomain" and code.lower() == "zero" else None
    spdx = spdx or f"cc-{code.lower()}-{version}"
    if port and f"{spdx}-{port.lower()}" in LICENSE_TABLE:
        return LICENSE_TABLE[f"{spdx}-{port.lower()}"], None
    zenodo = LICENSE_TABLE.get(spdx)
    return zenodo, (f"Licence: {text}" if zenodo and port else None)


def _license_key(text: str) -> tuple[str | None, str | None]:
    """(Zenodo licence id, note) for a licence URL, SPDX id or name; (None, None) if unknown."""
    text = text.strip()
    cc = _CC_URL.match(text)
    if cc:
        return _cc_license(*cc.groups(), text=text)
    for pattern in (_SPDX_URL, _OSI_URL):
        match = pattern.match(text)
        if match:
            text = match.group(1)
            break
    page = re.sub(r"^https?://(?:www\.)?", "", text.lower())
    page = re.sub(r"(\.html?|\.txt|\.en\.html|/)+$", "", page)
    if page in LICENSE_URLS:
        return LICENSE_TABLE[LICENSE_URLS[page]], None
    key = re.sub(r"[\s_,]+", "-", text.lower())
    key = LICENSE_ALIASES.get(key, key)
    named = _CC_NAME.match(key)
    if named:
        nc, kind, version = named.groups()
        kind = {"-sharealike": "-sa", None: ""}.get(kind, "-nd")
        key = f"cc-by{'-nc' if nc else ''}{kind}-{version}"
    if key in LICENSE_TABLE:
        return LICENSE_TABLE[key], None
    ported = _CC_ID.match(key)  # "CC-BY-3.0-AU", "cc by-nc 2.0 de"
    if ported and f"cc-{ported.group(1)}-{ported.group(2)}" in LICENSE_TABLE:
        return LICENSE_TABLE[f"cc-{ported.group(1)}-{ported.group(2)}"], f"Licence: {text}"
    return None, None


def _follow(graph: _Graph, value: Any, props: tuple[str, ...], prop: str) -> Iterator[str]:
    """Texts of a value, following references through ``props`` depth-first.

    A reference met twice on one path is a cycle and a bad request; the chain is also
    bounded by ``MAX_DEPTH`` so a deep nesting cannot exhaust the stack.
    """

    def walk(item: Any, path: tuple[str, ...], depth: int) -> Iterator[str]:
        if depth > MAX_DEPTH:
            raise BadRequest(f"{prop} references nest deeper than {MAX_DEPTH}", field=prop)
        if isinstance(item, str) and item not in path and graph.get(item) is not None:
            item = {"@id": item}  # a string naming an entity, not itself
        text = _text(item, prop)
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
            for sub in _values(entity.get(name)):
                yield from walk(sub, here, depth + 1)

    yield from walk(value, (), 0)


def _parts_license(graph: _Graph, root: dict[str, Any]) -> list[Any]:
    """The one licence every licensed part of the root shares, as ``[value]``, else ``[]``.

    A crate often licenses its files and not itself (the spec's rainfall example); Zenodo
    needs one licence for the record, and the files' common one is the honest choice.
    """
    found: list[Any] = []
    for part in _values(root.get("hasPart")):
        entity = graph.get(part)
        for value in _values(entity.get("license")) if entity is not None else []:
            if value not in found:
                found.append(value)
    return found if len(found) == 1 else []


def _license(graph: _Graph, root: dict[str, Any]) -> tuple[str, str | None]:
    values = _values(root.get("license")) or _parts_license(graph, root)
    if not values:
        return DEFAULT_LICENSE, None
    seen: list[str] = []
    for value in values:
        for text in _follow(graph, value, ("identifier", "@id", "url", "value", "name"), "license"):
            seen.append(text)
            zenodo, note = _license_key(text)
            if zenodo:
                return zenodo, note
    raise BadRequest(
        f"license {seen[0] if seen else values[0]!r} has no Zenodo equivalent; "
        "give an SPDX id such as CC-BY-4.0 or a creativecommons.org URL",
        field="license",
    )


def _upload_type(graph: _Graph, root: dict[str, Any]) -> dict[str, str]:
    base: tuple[str, str | None] | None = None
    for kind in _types(root):
        if kind != "Dataset" and kind in TYPE_TABLE:
            base = TYPE_TABLE[kind]
            break
    if base is None:
        main = graph.get(root.get("mainEntity"))
        if main is not None and "ComputationalWorkflow" in _types(main):
            base = ("software", None)
    upload, sub = base or (DEFAULT_UPLOAD_TYPE, None)
    for value in _values(root.get("genre")) + _values(root.get("additionalType")):
        term = (_text(value, "genre") or "").lower()
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


def _language_of(graph: _Graph, value: Any) -> str | None:
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
        text = _text(
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


def _funder_doi(graph: _Graph, value: Any) -> str | None:
    """The Crossref Funder DOI of a funder: its id or identifier, or its ROR id if known."""
    entity = graph.get(value)
    texts = [value] if entity is None else [entity.get("@id"), *_values(entity.get("identifier"))]
    for item in texts:
        text = _text(item, "funding") or ""
        match = _FUNDER_DOI.match(text)
        if match:
            return match.group(1)
        ror = _ROR.match(text)
        if ror and ror.group(1).lower() in ROR_TO_FUNDER_DOI:
            return ROR_TO_FUNDER_DOI[ror.group(1).lower()]
    return None


def _funding(graph: _Graph, root: dict[str, Any]) -> tuple[list[dict[str, str]], list[str]]:
    grants: list[dict[str, str]] = []
    notes: list[str] = []
    for value in _values(root.get("funding")):
        grant = graph.get(value)
        if grant is None:
            text = _text(value, "funding")
            if text:
                notes.append(f"Funding: {text}")
            continue
        number = _first_text(grant, "identifier")
        funders = _values(grant.get("funder"))
        funder = next((d for d in (_funder_doi(graph, f) for f in funders) if d), None)
        if number and funder and re.fullmatch(r"[\w./-]{1,100}", number):
            entry = {"id": f"{funder}::{number}"}
            if entry not in grants:
                grants.append(entry)
            continue
        label = _first_text(grant, "name", "identifier", "@id") or ""
        funder_names = [n for n in (_entity_label(graph, f, "funding") for f in funders) if n]
        if funder_names:
            label = f"{label} ({', '.join(funder_names)})" if label else ", ".join(funder_names)
        if label:
            notes.append(f"Funding: {label}")
    for value in _values(root.get("funder")):
        label = _entity_label(graph, value, "funder")
        if label and not any(label in n for n in notes) and not grants:
            notes.append(f"Funder: {label}")
    return grants, notes


def _identifier_texts(graph: _Graph, value: Any, prop: str) -> Iterator[str]:
    """Identifier strings of a literal, a reference, or an entity (identifier, @id, url)."""
    return _follow(graph, value, ("identifier", "value", "@id", "url"), prop)


def _related(graph: _Graph, root: dict[str, Any]) -> list[dict[str, str]]:
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
        for value in _values(root.get(prop)):
            for text in _identifier_texts(graph, value, prop):
                if add(normalise_identifier(text), relation):
                    break
    return out


def _description(root: dict[str, Any], title: str) -> str:
    text = _first_text(root, "description", "abstract") or title
    return html.escape(text, quote=False).replace("\r\n", "\n").replace("\n", "<br>")


def _keywords(graph: _Graph, root: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for value in _values(root.get("keywords")):
        text = _text(value, "keywords")
        parts = text.split(",") if text else [_entity_label(graph, value, "keywords") or ""]
        for part in parts:
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def crate_to_zenodo(crate: dict[str, Any], *, today: _dt.date | None = None) -> dict[str, Any]:
    """The Zenodo classic deposition ``metadata`` for an RO-Crate (defaults filled in)."""
    graph = _Graph(crate)
    root = _root_of(graph)
    title = _first_text(root, "name", "headline") or DEFAULT_TITLE
    dates = _values(root.get("datePublished"))
    published = next((d for d in map(parse_date, dates) if d), None)
    if dates and not published:
        raise BadRequest(
            f"datePublished {dates[0]!r} is not an ISO 8601 date (YYYY, YYYY-MM or YYYY-MM-DD)",
            field="datePublished",
        )
    license_id, license_note = _license(graph, root)
    grants, notes = _funding(graph, root)
    meta: dict[str, Any] = {
        "title": title,
        "description": _description(root, title),
        "publication_date": published or (today or _dt.date.today()).isoformat(),
        "creators": _creators(graph, root),
        "access_right": "open",
        "license": license_id,
        **_upload_type(graph, root),
    }
    optional: dict[str, Any] = {
        "contributors": _contributors(graph, root),
        "keywords": _keywords(graph, root),
        "version": _first_text(root, "version"),
        "language": next(
            (c for c in (_language_of(graph, v) for v in _values(root.get("inLanguage"))) if c),
            None,
        ),
        "grants": grants,
        "related_identifiers": _related(graph, root),
        "notes": "\n".join(([license_note] if license_note else []) + notes),
    }
    meta.update({k: v for k, v in optional.items() if v})
    return meta


# ---------------------------------------------------------------------------------------------
# Back: Zenodo -> RO-Crate


def _plain(description: str) -> str:
    text = re.sub(r"<br\s*/?>", "\n", description, flags=re.I)
    text = re.sub(r"</p>\s*<p[^>]*>", "\n\n", text, flags=re.I)
    return html.unescape(_TAG.sub("", text)).strip()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


class _Builder:
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


def _schema_types(metadata: dict[str, Any]) -> dict[str, Any]:
    """``@type`` (and ``genre`` where no schema.org type says it) for an upload type.

    Chosen so that ``_upload_type`` reads back exactly the same upload and sub type.
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
        prop = by_relation.get(item.get("relation")) if isinstance(item, dict) else None
        ident = item.get("identifier") if prop else None
        if isinstance(ident, str):
            doi = doi_of(ident)
            url = f"https://doi.org/{doi}" if doi else ident
            out.setdefault(prop, []).append(url if prop == "identifier" else {"@id": url})
    return {k: _one_or_many(v) if k == "identifier" else v for k, v in out.items()}


def _literals_back(metadata: dict[str, Any]) -> dict[str, Any]:
    """The root's plain values: name, description as text, date, keywords, version, language."""
    keywords = metadata.get("keywords")
    values = {
        "name": metadata.get("title"),
        "description": _plain(str(metadata["description"]))
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
    build = _Builder()
    notes = [n.strip() for n in str(metadata.get("notes") or "").splitlines() if n.strip()]
    root: dict[str, Any] = {
        "@id": "./",
        "@type": "Dataset",
        **_schema_types(metadata),
        **_literals_back(metadata),
        **build.agents(metadata),
        **build.license(metadata, notes),
        **build.funding(metadata, notes),
        **_relations_back(metadata),
        **build.files(files),
    }
    descriptor = {
        "@id": "ro-crate-metadata.json",
        "@type": "CreativeWork",
        "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
        "about": {"@id": "./"},
    }
    return {
        "@context": "https://w3id.org/ro/crate/1.1/context",
        "@graph": [descriptor, root, *build.entities.values()],
    }


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
