"""The vocabularies and tables the RO-Crate mapping looks terms up in; data, no graph.

Boundary: constants and lookups over them only (no crate, no entity, no HTTP). Zenodo's
classic deposition vocabularies (upload, publication and image types, contributor types,
licence ids) sit beside the target-neutral ones (ISO 639 languages, name particles,
organisation types, ROR -> Crossref Funder DOI); each table says which it is. ``license_key``
turns a licence URL, SPDX id or name into a Zenodo licence id.
"""

from __future__ import annotations

import re

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


# ---------------------------------------------------------------------------------------------
# Licences: a URL, SPDX id or name -> Zenodo licence id


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


def license_key(text: str) -> tuple[str | None, str | None]:
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
