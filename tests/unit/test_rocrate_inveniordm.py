"""RO-Crate <-> InvenioRDM record metadata: real crates mapped exactly, round trips, the rules
the mapping must keep (partial dates, nothing invented, licences, error fields)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.errors import BadRequest
from common.rocrate.inveniordm import (
    crate_property_for,
    crate_to_inveniordm,
    field_of_value,
    inveniordm_to_crate,
)
from tests.support.crates import crate

CRATES = Path(__file__).resolve().parents[1] / "data" / "crates"


def _load(name: str) -> dict[str, Any]:
    return json.loads((CRATES / name).read_text(encoding="utf-8"))


def _orcid(family: str, given: str, orcid: str) -> dict[str, Any]:
    return {
        "person_or_org": {
            "type": "personal",
            "family_name": family,
            "given_name": given,
            "identifiers": [{"scheme": "orcid", "identifier": orcid}],
        }
    }


# The exact metadata of real crates (tests/data/crates/SOURCES.md); long descriptions are
# checked by their start and end.
REAL: dict[str, tuple[dict[str, Any], str, str]] = {
    "ro-crate-1.1-specification.json": (
        {
            "resource_type": {"id": "dataset"},
            "title": "RO-Crate specification dataset",
            "publication_date": "2022-01-19",
            "creators": [
                _orcid("Ó Carragáin", "Eoghan", "0000-0001-8131-2150"),
                _orcid("Sefton", "Peter", "0000-0002-3545-944X"),
                _orcid("Soiland-Reyes", "Stian", "0000-0001-9842-9718"),
                _orcid("Corcho", "Oscar", "0000-0002-9260-0753"),
                _orcid("de Witt", "Shaun", "0000-0003-4196-3658"),
            ],
            "rights": [{"id": "apache-2.0"}],
            "identifiers": [{"identifier": "10.5281/zenodo.5841615", "scheme": "doi"}],
            "related_identifiers": [
                {
                    "identifier": "10.3233/DS-210053",
                    "scheme": "doi",
                    "relation_type": {"id": "cites"},
                },
                {
                    "identifier": "10.5281/zenodo.3250687",
                    "scheme": "doi",
                    "relation_type": {"id": "cites"},
                },
                {
                    "identifier": "https://w3id.org/ro/crate/",
                    "scheme": "url",
                    "relation_type": {"id": "ispartof"},
                },
            ],
            "version": "1.1.2",
            "publisher": "ResearchObject.org",
        },
        "This specification defines a method, known as RO-Crate",
        "with explanation by examples.",
    ),
    "workflowhub-workflow-ro-crate-1.0-example.json": (
        {
            "resource_type": {"id": "workflow"},
            "title": "Hello World",
            "publication_date": "2021-11-18",
            "creators": [_orcid("Soiland-Reyes", "Stian", "0000-0001-9842-9718")],
            "rights": [{"id": "cc0-1.0"}],
            "subjects": [{"subject": "example"}, {"subject": "reverse"}],
            "publisher": "WorkflowHub project",
        },
        "An example Workflow RO-Crate, showing a Galaxy workflow",
        "refer to the Workflow RO-Crate profile for minimal requirements.",
    ),
    "rohub-real-world-example.json": (
        {
            "resource_type": {"id": "dataset"},
            "title": "A new index (MediSkew) for the assessment of the Cymodocea nodosa (Ucria)"
            " Ascherson meadow's status",
            "publication_date": "2018-06-20",
            "creators": [{"person_or_org": {"type": "organizational", "name": "CNR-ISMAR"}}],
            "contributors": [
                {
                    "person_or_org": {"type": "organizational", "name": "ELSEVIER SCI LTD"},
                    "role": {"id": "rightsholder"},
                }
            ],
            "identifiers": [
                {
                    "identifier": "https://w3id.org/ro-id/b927e3d8-5bfd-4332-b14c-ab3a07d36dc6",
                    "scheme": "url",
                }
            ],
        },
        "In the Mediterranean region Cymodocea nodose",
        "(C) 2015 Elsevier Ltd. All rights reserved.",
    ),
    "ro-crate-zenodo-valid-crate.json": (
        {
            "resource_type": {"id": "lesson"},
            "title": "Demo Crate",
            "publication_date": "2024-03-08",
            # Its ORCID 0000-0000-0000-0000 fails the check digit, so it is left out.
            "creators": [
                {
                    "person_or_org": {
                        "type": "personal",
                        "family_name": "Smith",
                        "given_name": "Jane",
                    },
                    "affiliations": [{"name": "Example University"}],
                }
            ],
            "rights": [{"id": "cc-by-nc-sa-4.0"}],
            "publisher": "Example University",
        },
        "a demo crate for Galaxy training",
        "a demo crate for Galaxy training",
    ),
    "rds-upstream-example.json": (
        {
            # no creator in the crate: none is invented (publish names `creator`)
            "resource_type": {"id": "dataset"},
            "title": "Data files associated with the manuscript:Effects of facilitated family"
            " case conferencing for ...",
            "publication_date": "2017",  # the crate says 2017: EDTF keeps the year only
            "rights": [
                {
                    "title": {
                        "en": "Attribution-NonCommercial-ShareAlike 3.0 Australia"
                        " (CC BY-NC-SA 3.0 AU)"
                    },
                    "link": "https://creativecommons.org/licenses/by-nc-sa/3.0/au/",
                }
            ],
            "identifiers": [{"identifier": "10.4225/59/59672c09f4a4b", "scheme": "doi"}],
        },
        "Palliative care planning for nursing home residents",
        "dementia ...",
    ),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_crate_maps_exactly(name: str) -> None:
    expected, start, end = REAL[name]
    meta = crate_to_inveniordm(_load(name))
    description = meta.pop("description")
    assert description.startswith(start) and description.endswith(end)
    assert meta == expected


def _every_crate() -> list[str]:
    return sorted(p.name for p in CRATES.iterdir() if p.name != "SOURCES.md")


@pytest.mark.parametrize("name", _every_crate())
def test_every_real_crate_round_trips(name: str) -> None:
    first = crate_to_inveniordm(_load(name))
    files = [{"key": "a/data.csv", "size": 10, "checksum": "md5:x"}]
    back = inveniordm_to_crate({"metadata": first, "pids": {}}, files=files)
    assert crate_to_inveniordm(back) == first
    assert crate_to_inveniordm(inveniordm_to_crate({"metadata": first})) == first


def test_partial_dates_are_kept_and_bad_ones_named() -> None:
    for given, edtf in (
        ("2017", "2017"),
        ("2017-05", "2017-05"),
        ("2017-05-03T10:00Z", "2017-05-03"),
    ):
        assert crate_to_inveniordm(crate({"datePublished": given}))["publication_date"] == edtf
    with pytest.raises(BadRequest) as err:
        crate_to_inveniordm(crate({"datePublished": "last spring"}))
    assert err.value.field == "datePublished"


def test_nothing_is_invented() -> None:
    assert crate_to_inveniordm(crate({})) == {"resource_type": {"id": "dataset"}}


def test_people_organisations_roles_affiliations_and_ror() -> None:
    meta = crate_to_inveniordm(
        crate(
            {
                "creator": [{"@id": "https://orcid.org/0000-0002-1825-0097"}, {"@id": "#uni"}],
                "author": "ignored when creator names someone",
                "editor": {"@id": "#ed"},
                "contributor": "Doe, Jane",
            },
            {
                "@id": "https://orcid.org/0000-0002-1825-0097",
                "@type": "Person",
                "name": "Josiah Carberry",
                "affiliation": {"@id": "#uni"},
            },
            {
                "@id": "#uni",
                "@type": "Organization",
                "name": "Brown University",
                "identifier": "https://ror.org/05gq02987",
            },
            {"@id": "#ed", "@type": "Person", "givenName": "Ann", "familyName": "Lee"},
        )
    )
    assert meta["creators"] == [
        {
            "person_or_org": {
                "type": "personal",
                "family_name": "Carberry",
                "given_name": "Josiah",
                "identifiers": [{"scheme": "orcid", "identifier": "0000-0002-1825-0097"}],
            },
            "affiliations": [{"name": "Brown University"}],
        },
        {
            "person_or_org": {
                "type": "organizational",
                "name": "Brown University",
                "identifiers": [{"scheme": "ror", "identifier": "05gq02987"}],
            }
        },
    ]
    assert meta["contributors"] == [
        {
            "person_or_org": {"type": "personal", "family_name": "Doe", "given_name": "Jane"},
            "role": {"id": "other"},
        },
        {
            "person_or_org": {"type": "personal", "family_name": "Lee", "given_name": "Ann"},
            "role": {"id": "editor"},
        },
    ]


def test_types_languages_keywords_funding_version() -> None:
    meta = crate_to_inveniordm(
        crate(
            {
                "@type": ["Dataset", "ScholarlyArticle"],
                "inLanguage": ["en", {"@id": "#de"}],
                "keywords": "soil, water",
                "version": 2,
                "funding": {"@id": "#grant"},
                "funder": {"@id": "https://ror.org/00k4n6c32"},
            },
            {"@id": "#de", "@type": "Language", "alternateName": "de", "name": "German"},
            {
                "@id": "#grant",
                "@type": "Grant",
                "identifier": "101017536",
                "name": "EOSC",
                "funder": {"@id": "https://ror.org/00k4n6c32"},
            },
            {
                "@id": "https://ror.org/00k4n6c32",
                "@type": "Organization",
                "name": "European Commission",
            },
        )
    )
    assert meta["resource_type"] == {"id": "publication-article"}
    assert meta["languages"] == [{"id": "eng"}, {"id": "deu"}]
    assert meta["subjects"] == [{"subject": "soil"}, {"subject": "water"}]
    assert meta["version"] == "2"
    assert meta["funding"] == [
        {"funder": {"id": "00k4n6c32"}, "award": {"number": "101017536", "title": {"en": "EOSC"}}}
    ]
    back = inveniordm_to_crate({"metadata": meta})
    assert crate_to_inveniordm(back) == meta


def test_an_unknown_licence_is_a_400_naming_license() -> None:
    with pytest.raises(BadRequest) as err:
        crate_to_inveniordm(crate({"license": "my own terms"}))
    assert err.value.field == "license"


@pytest.mark.parametrize(
    ("field", "prop"),
    [
        ("metadata.creators.0.person_or_org.family_name", "creator"),
        ("metadata.creators", "creator"),
        ("metadata.title", "name"),
        ("metadata.publication_date", "datePublished"),
        ("metadata.resource_type.id", "@type"),
        ("metadata.rights.0.rights", "license"),
        ("metadata.languages.0.id", "inLanguage"),
        ("metadata.subjects", "keywords"),
        ("files.enabled", "files"),
        ("access.record", "metadata"),
        ("_schema", "metadata"),
    ],
)
def test_error_fields_name_the_crate_property(field: str, prop: str) -> None:
    assert crate_property_for(field) == prop


def test_list_entries_are_named_by_their_role_or_relation() -> None:
    meta = {
        "contributors": [{"role": {"id": "editor"}}],
        "related_identifiers": [{"relation_type": {"id": "isderivedfrom"}}],
    }
    assert crate_property_for("metadata.contributors.0.role", metadata=meta) == "editor"
    assert crate_property_for("metadata.related_identifiers.0", metadata=meta) == "isBasedOn"
    assert field_of_value({"rights": [{"id": "wtfpl"}]}, "wtfpl") == "metadata.rights.0.id"
    assert field_of_value({"rights": []}, "wtfpl") is None
