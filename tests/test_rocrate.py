"""RO-Crate <-> Zenodo metadata mapping: one test per rule, per malformed input, per real crate."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from common.errors import BadRequest
from common.rocrate import (
    crate_property_for,
    crate_to_zenodo,
    find_root,
    parse_date,
    zenodo_to_crate,
)

TODAY = dt.date(2026, 11, 27)
CRATES = Path(__file__).parent / "data" / "crates"


def crate(root: dict[str, Any] | None = None, *entities: dict[str, Any], version: str = "1.1"):
    """A minimal valid crate whose root has ``root``'s properties, plus ``entities``."""
    return {
        "@context": f"https://w3id.org/ro/crate/{version}/context",
        "@graph": [
            {
                "@id": "ro-crate-metadata.json",
                "@type": "CreativeWork",
                "conformsTo": {"@id": f"https://w3id.org/ro/crate/{version}"},
                "about": {"@id": "./"},
            },
            {"@id": "./", "@type": "Dataset", **(root or {})},
            *entities,
        ],
    }


def zen(root: dict[str, Any] | None = None, *entities: dict[str, Any]) -> dict[str, Any]:
    return crate_to_zenodo(crate(root, *entities), today=TODAY)


# --- find_root -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_root_found_through_descriptor_for_each_spec_version(version):
    assert find_root(crate({"name": "x"}, version=version))["name"] == "x"


def test_root_found_with_legacy_jsonld_descriptor_and_list_context():
    doc = {
        "@context": ["https://w3id.org/ro/crate/1.0/context", {"@vocab": "http://schema.org/"}],
        "@graph": [
            {"@id": "./", "@type": "Dataset", "name": "legacy"},
            {
                "@id": "ro-crate-metadata.jsonld",
                "@type": "CreativeWork",
                "conformsTo": {"@id": "https://w3id.org/ro/crate/1.0"},
                "about": {"@id": "./"},
            },
        ],
    }
    assert find_root(doc)["name"] == "legacy"


def test_root_with_absolute_id_is_found():
    doc = crate()
    doc["@graph"][0]["about"] = {"@id": "https://doi.org/10.1234/abc"}
    doc["@graph"][1]["@id"] = "https://doi.org/10.1234/abc"
    assert find_root(doc)["@id"] == "https://doi.org/10.1234/abc"


def test_descriptor_conforming_to_spec_wins_over_one_that_does_not():
    doc = crate({"name": "right"})
    doc["@graph"].insert(0, {"@id": "sub/ro-crate-metadata.json", "about": {"@id": "#other"}})
    doc["@graph"].append({"@id": "#other", "name": "wrong"})
    assert find_root(doc)["name"] == "right"


@pytest.mark.parametrize(
    "doc",
    [
        [],
        "ro-crate",
        {"@graph": []},  # no @context: not JSON-LD
        {"@context": "https://w3id.org/ro/crate/1.1/context"},
        {"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": {"@id": "./"}},
        {"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": [{"@id": "./"}]},
    ],
    ids=["list", "string", "no-context", "no-graph", "graph-not-list", "no-descriptor"],
)
def test_malformed_crates_are_bad_requests_naming_metadata(doc):
    with pytest.raises(BadRequest) as err:
        find_root(doc)
    assert err.value.field == "metadata"


def test_descriptor_about_missing_root_is_refused():
    doc = crate()
    doc["@graph"].pop(1)
    with pytest.raises(BadRequest, match="root data entity"):
        crate_to_zenodo(doc)


def test_descriptor_about_itself_is_refused():
    doc = crate()
    doc["@graph"][0]["about"] = {"@id": "ro-crate-metadata.json"}
    with pytest.raises(BadRequest, match="about itself"):
        find_root(doc)


def test_too_many_entities_are_refused():
    doc = crate()
    doc["@graph"].extend({"@id": f"#e{i}"} for i in range(100_001))
    with pytest.raises(BadRequest, match="more than 100000"):
        crate_to_zenodo(doc)


# --- rules -------------------------------------------------------------------------------------


def test_defaults_fill_everything_zenodo_requires():
    assert zen() == {
        "title": "Untitled",
        "description": "Untitled",
        "publication_date": "2026-11-27",
        "creators": [{"name": "Unknown"}],
        "access_right": "open",
        "license": "cc-by-4.0",
        "upload_type": "dataset",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2017", "2017-01-01"),
        ("2017-05", "2017-05-01"),
        ("2017-05-03", "2017-05-03"),
        ("2017-05-03T10:11:12+02:00", "2017-05-03"),
        (["nonsense", "2019-02"], "2019-02-01"),
        ({"@value": "2020-12-31"}, "2020-12-31"),
    ],
)
def test_date_published_full_partial_and_lists(value, expected):
    assert zen({"datePublished": value})["publication_date"] == expected


@pytest.mark.parametrize("value", ["yesterday", "2017-13", "2017-02-30", ["x", "y"]])
def test_invalid_date_is_a_bad_request_naming_date_published(value):
    with pytest.raises(BadRequest) as err:
        zen({"datePublished": value})
    assert err.value.field == "datePublished"


def test_parse_date_rejects_non_text():
    assert parse_date(2017) == "2017-01-01"  # a JSON number year
    assert parse_date(None) is None


def test_description_is_escaped_plain_text():
    meta = zen({"name": "T", "description": "a < b & <script>x</script>\nnext"})
    assert meta["description"] == "a &lt; b &amp; &lt;script&gt;x&lt;/script&gt;<br>next"


def test_every_creator_with_orcid_and_affiliation():
    meta = zen(
        {
            "creator": [
                {"@id": "https://orcid.org/0000-0002-1825-0097"},
                {"@id": "#alice"},
                {"@id": "#uni"},
                "Jane Literal",
            ]
        },
        {
            "@id": "https://orcid.org/0000-0002-1825-0097",
            "@type": "Person",
            "name": "Josiah Carberry",
            "affiliation": {"@id": "#uni"},
        },
        {
            "@id": "#alice",
            "@type": "Person",
            "givenName": "Alice",
            "familyName": "Smith",
            "identifier": "0000-0001-5109-3700",
            "affiliation": "Some Lab",
        },
        {"@id": "#uni", "@type": "Organization", "name": "Brown University"},
    )
    assert meta["creators"] == [
        {
            "name": "Carberry, Josiah",
            "affiliation": "Brown University",
            "orcid": "0000-0002-1825-0097",
        },
        {"name": "Smith, Alice", "affiliation": "Some Lab", "orcid": "0000-0001-5109-3700"},
        {"name": "Brown University"},
        {"name": "Jane Literal"},
    ]


def test_orcid_with_wrong_check_digit_is_dropped():
    meta = zen(
        {"creator": {"@id": "https://orcid.org/0000-0002-1825-0098"}},
        {"@id": "https://orcid.org/0000-0002-1825-0098", "@type": "Person", "name": "A B"},
    )
    assert meta["creators"] == [{"name": "B, A"}]


def test_contributors_get_zenodo_types():
    meta = zen(
        {"contributor": {"@id": "#c"}, "editor": {"@id": "#e"}, "copyrightHolder": {"@id": "#o"}},
        {"@id": "#c", "@type": "Person", "name": "Carl C"},
        {"@id": "#e", "@type": "Person", "familyName": "Ed", "givenName": "Ed"},
        {"@id": "#o", "@type": "Organization", "name": "Org"},
    )
    assert meta["contributors"] == [
        {"name": "C, Carl", "type": "Other"},
        {"name": "Ed, Ed", "type": "Editor"},
        {"name": "Org", "type": "RightsHolder"},
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"@id": "https://creativecommons.org/licenses/by/4.0/"}, "cc-by-4.0"),
        ("https://creativecommons.org/licenses/by-sa/4.0/legalcode", "cc-by-sa-4.0"),
        ("https://creativecommons.org/publicdomain/zero/1.0/", "cc-zero"),
        ("CC0-1.0", "cc-zero"),
        ("CC-BY-4.0", "cc-by-4.0"),
        ("https://spdx.org/licenses/MIT", "mit"),
        ("https://spdx.org/licenses/Apache-2.0.html", "apache-2.0"),
        ("https://opensource.org/licenses/BSD-3-Clause", "bsd-3-clause"),
        ("GPL-3.0", "gpl-3.0-only"),
    ],
)
def test_license_urls_and_spdx_ids(value, expected):
    assert zen({"license": value})["license"] == expected


def test_license_through_referenced_creative_work():
    meta = zen(
        {"license": {"@id": "#lic"}},
        {"@id": "#lic", "@type": "CreativeWork", "identifier": "Apache-2.0", "name": "Apache"},
    )
    assert meta["license"] == "apache-2.0"


def test_ported_cc_licence_maps_to_generic_with_a_note():
    meta = zen({"license": "https://creativecommons.org/licenses/by/3.0/au/"})
    assert meta["license"] == "cc-by-3.0"
    assert meta["notes"] == "Licence: https://creativecommons.org/licenses/by/3.0/au/"


def test_unknown_license_is_a_bad_request_naming_license():
    with pytest.raises(BadRequest) as err:
        zen({"license": "https://example.org/my-licence"})
    assert err.value.field == "license"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a, b ,c", ["a", "b", "c"]),
        (["x", "y", "x"], ["x", "y"]),
        (["a, b", "c"], ["a", "b", "c"]),
    ],
)
def test_keywords(value, expected):
    assert zen({"keywords": value})["keywords"] == expected


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ({"@type": ["Dataset", "SoftwareSourceCode"]}, {"upload_type": "software"}),
        (
            {"@type": ["Dataset", "ScholarlyArticle"]},
            {"upload_type": "publication", "publication_type": "article"},
        ),
        ({"@type": ["Dataset", "ImageObject"]}, {"upload_type": "image", "image_type": "other"}),
        (
            {"@type": ["Dataset", "ImageObject"], "genre": "figure"},
            {"upload_type": "image", "image_type": "figure"},
        ),
        ({"additionalType": "poster"}, {"upload_type": "poster"}),
        ({"genre": "preprint"}, {"upload_type": "publication", "publication_type": "preprint"}),
        ({"@type": "Dataset"}, {"upload_type": "dataset"}),
    ],
)
def test_type_to_upload_type(root, expected):
    meta = zen(root)
    got = {k: meta[k] for k in ("upload_type", "publication_type", "image_type") if k in meta}
    assert got == expected


def test_workflow_main_entity_makes_software():
    meta = zen(
        {"mainEntity": {"@id": "wf.cwl"}},
        {"@id": "wf.cwl", "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"]},
    )
    assert meta["upload_type"] == "software"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("en", "eng"), ("en-GB", "eng"), ("de", "deu"), ("ger", "deu"), ("fra", "fra")],
)
def test_language_codes(value, expected):
    assert zen({"inLanguage": value})["language"] == expected


def test_language_entity():
    meta = zen(
        {"inLanguage": {"@id": "#de"}},
        {"@id": "#de", "@type": "Language", "name": "German", "alternateName": "de"},
    )
    assert meta["language"] == "deu"


def test_version_as_text():
    assert zen({"version": 1.5})["version"] == "1.5"


def test_funding_with_funder_doi_becomes_grant_else_note():
    meta = zen(
        {"funding": [{"@id": "#g1"}, {"@id": "#g2"}]},
        {
            "@id": "#g1",
            "@type": "Grant",
            "identifier": "654182",
            "funder": {"@id": "https://doi.org/10.13039/501100000780"},
        },
        {
            "@id": "https://doi.org/10.13039/501100000780",
            "@type": "Organization",
            "name": "European Commission",
        },
        {"@id": "#g2", "@type": "Grant", "name": "Seed money", "funder": {"@id": "#f"}},
        {"@id": "#f", "@type": "Organization", "name": "Uni Fund"},
    )
    assert meta["grants"] == [{"id": "10.13039/501100000780::654182"}]
    assert meta["notes"] == "Funding: Seed money (Uni Fund)"


def test_related_identifiers_with_relations_and_schemes():
    meta = zen(
        {
            "citation": [{"@id": "https://doi.org/10.1000/XYZ"}, {"@id": "#paper"}],
            "isBasedOn": "https://hdl.handle.net/10273/abc",
            "identifier": ["doi:10.5555/own", "https://doi.org/10.5281/zenodo.123"],
            "sameAs": "https://example.org/ds",
        },
        {"@id": "#paper", "@type": "ScholarlyArticle", "identifier": "arXiv:2101.00001"},
    )
    assert meta["related_identifiers"] == [
        {"identifier": "10.1000/XYZ", "relation": "cites"},
        {"identifier": "arXiv:2101.00001", "relation": "cites"},
        {"identifier": "hdl:10273/abc", "relation": "isDerivedFrom"},
        {"identifier": "10.5555/own", "relation": "isAlternateIdentifier"},
        {"identifier": "https://example.org/ds", "relation": "isIdenticalTo"},
    ]


def test_reference_cycle_is_a_bad_request_naming_the_property():
    with pytest.raises(BadRequest, match="cycle") as err:
        zen(
            {"license": {"@id": "#a"}},
            {"@id": "#a", "identifier": {"@id": "#b"}},
            {"@id": "#b", "identifier": {"@id": "#a"}, "name": "CC-BY-4.0"},
        )
    assert err.value.field == "license"


def test_self_referencing_affiliation_is_only_read_one_step():
    meta = zen(
        {"creator": {"@id": "#p"}},
        {"@id": "#p", "@type": "Person", "name": "P Q", "affiliation": {"@id": "#p"}},
    )
    assert meta["creators"] == [{"name": "Q, P", "affiliation": "P Q"}]


def test_deeply_nested_references_are_bounded():
    chain = [{"@id": f"#n{i}", "identifier": {"@id": f"#n{i + 1}"}} for i in range(100)]
    with pytest.raises(BadRequest, match="deeper") as err:
        zen({"citation": {"@id": "#n0"}}, *chain)
    assert err.value.field == "citation"


def test_huge_text_is_refused_fast():
    doc = crate({"name": "x", "description": "a" * 50_000_000})
    with pytest.raises(BadRequest) as err:
        crate_to_zenodo(doc)
    assert err.value.field == "description"


# --- back and round trip ------------------------------------------------------------------------


def test_zenodo_to_crate_builds_a_crate_with_files():
    back = zenodo_to_crate(
        {
            "title": "T",
            "creators": [
                {"name": "Smith, Alice", "orcid": "0000-0001-5109-3700", "affiliation": "Lab"}
            ],
            "license": "cc-zero",
            "doi": "10.5281/zenodo.42",
        },
        files=[
            {
                "filename": "data/a b.csv",
                "size": 3,
                "checksum": "md5:0cc175b9c0f1b6a831c399e269772661",
            }
        ],
    )
    root = find_root(back)
    assert root["identifier"] == "https://doi.org/10.5281/zenodo.42"
    ents = {e["@id"]: e for e in back["@graph"]}
    assert ents["https://orcid.org/0000-0001-5109-3700"]["affiliation"] == {"@id": "#org-lab"}
    assert ents["#org-lab"]["name"] == "Lab"
    assert ents[root["license"]["@id"]]["identifier"] == "CC0-1.0"
    assert ents["data/a%20b.csv"]["contentSize"] == "3"


def test_round_trip_is_stable_for_rules():
    doc = crate(
        {
            "name": "R",
            "description": "x & y\nz",
            "creator": [{"@id": "#a"}, {"@id": "#o"}],
            "keywords": "k1, k2",
            "license": "https://creativecommons.org/licenses/by-nc/3.0/de/",
            "genre": "figure",
            "@type": ["Dataset", "ImageObject"],
            "funding": {"@id": "#g"},
            "funder": {"@id": "#o"},
            "inLanguage": "en",
        },
        {"@id": "#a", "@type": "Person", "name": "A B", "affiliation": {"@id": "#o"}},
        {"@id": "#o", "@type": "Organization", "name": "O"},
        {"@id": "#g", "@type": "Grant", "name": "G"},
    )
    first = crate_to_zenodo(doc, today=TODAY)
    assert crate_to_zenodo(zenodo_to_crate(first), today=TODAY) == first


@pytest.mark.parametrize(
    ("field", "prop"),
    [
        ("metadata.creators.0.name", "creator"),
        ("creators.0.orcid", "creator"),
        ("metadata.title", "name"),
        ("publication_date", "datePublished"),
        ("license", "license"),
        ("keywords", "keywords"),
        ("metadata.upload_type", "@type"),
        ("metadata.language", "inLanguage"),
        ("metadata.communities", "metadata"),
        ("", "metadata"),
    ],
)
def test_crate_property_for(field, prop):
    assert crate_property_for(field) == prop


def test_crate_property_for_related_identifier_uses_relation():
    meta = {"related_identifiers": [{"identifier": "x", "relation": "isDerivedFrom"}]}
    assert (
        crate_property_for("metadata.related_identifiers.0.identifier", metadata=meta)
        == "isBasedOn"
    )


def _load(name: str) -> dict[str, Any]:
    return json.loads((CRATES / name).read_text(encoding="utf-8"))
