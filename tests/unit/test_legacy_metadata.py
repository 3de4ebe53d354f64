"""Metadata dicts older RDS callers PATCH instead of an RO-Crate: mapped, or a 400 naming
what cannot be -- never a 2xx that drops fields. The payloads are the shapes Layer 2's
contract tests and the old port_zenodo use."""

from __future__ import annotations

import pytest

from common.errors import BadRequest
from common.legacy_metadata import crate_from_legacy
from common.rocrate import crate_to_zenodo, find_root
from tests.conftest import uid

DATACITE = {
    "Creators": [
        {
            "name": "Mustermann, Max",
            "nameType": "Personal",
            "familyName": "Mustermann",
            "givenName": "Max",
        }
    ],
    "Identifiers": [{"identifierType": "DOI", "identifier": "10.5072/example"}],
    "PublicationYear": "2020",
    "Publisher": "University of Münster",
    "ResourceType": "Poster",
    "SchemaVersion": "http://datacite.org/schema/kernel-4",
    "Titles": [{"title": "This is a test title", "lang": "de"}],
}
FLAT_ZENODO = {
    "description": "Beispieltest. Ganz viel<br><br>asd mit umbruch",
    "upload_type": "publication",
    "title": "testtitle",
    "creators": [{"affiliation": "WWU", "name": "Peter Heiss"}, {"name": "Jens Stegmann"}],
    "publication_date": "2020-09-29T22:00:00.000Z",
    "publication_type": "thesis",
}


def test_a_datacite_dict_reaches_zenodo_with_title_creators_year_type_and_identifier() -> None:
    crate = crate_from_legacy(DATACITE)
    zenodo = crate_to_zenodo(crate)
    assert zenodo["title"] == "This is a test title"
    assert zenodo["creators"] == [{"name": "Mustermann, Max"}]
    assert zenodo["publication_date"] == "2020-01-01"
    assert zenodo["upload_type"] == "poster"
    assert zenodo["related_identifiers"] == [
        {"identifier": "10.5072/example", "relation": "isAlternateIdentifier"}
    ]
    root = find_root(crate)
    publisher = next(e for e in crate["@graph"] if e["@id"] == root["publisher"]["@id"])
    assert publisher["name"] == "University of Münster"


def test_the_creator_name_variant_and_affiliations_and_orcids() -> None:
    crate = crate_from_legacy(
        {
            "Creators": [
                {"creatorName": "Max Mustermann", "nameType": "Personal"},
                {
                    "name": "Erika Musterfrau",
                    "affiliation": [{"name": "WWU"}, "ULB"],
                    "nameIdentifiers": [
                        {
                            "nameIdentifier": "https://orcid.org/0000-0002-1825-0097",
                            "nameIdentifierScheme": "ORCID",
                        }
                    ],
                },
                {"name": "Uni Münster", "nameType": "Organizational"},
            ],
            "PublicationYear": "2020",
        }
    )
    assert crate_to_zenodo(crate)["creators"] == [
        {"name": "Mustermann, Max"},
        {"name": "Musterfrau, Erika", "affiliation": "WWU; ULB", "orcid": "0000-0002-1825-0097"},
        {"name": "Uni Münster"},
    ]


def test_a_flat_zenodo_dict_keeps_every_field_it_had() -> None:
    zenodo = crate_to_zenodo(crate_from_legacy(FLAT_ZENODO))
    assert zenodo["title"] == "testtitle"
    assert zenodo["description"] == "Beispieltest. Ganz viel<br><br>asd mit umbruch"
    assert zenodo["creators"] == [
        {"name": "Heiss, Peter", "affiliation": "WWU"},
        {"name": "Jens Stegmann"},
    ]
    assert zenodo["publication_date"] == "2020-09-29"
    assert (zenodo["upload_type"], zenodo["publication_type"]) == ("publication", "thesis")


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ({**DATACITE, "FundingReferences": []}, "FundingReferences"),
        ({**FLAT_ZENODO, "communities": [{"identifier": "x"}]}, "communities"),
        ({"titles": [{"title": "lower case is no DataCite"}], "publisher": "x"}, "publisher"),
        ({**DATACITE, "ResourceType": "Spreadsheet"}, "Spreadsheet"),
        ({**FLAT_ZENODO, "upload_type": ["dataset"]}, "upload_type"),
        ({**FLAT_ZENODO, "publication_type": {"id": "thesis"}}, "publication_type"),
        ({**FLAT_ZENODO, "creators": "Peter Heiss"}, "creators"),
        ({**DATACITE, "ResourceType": {"resourceTypeGeneral": ["Poster"]}}, "ResourceType"),
        ({**DATACITE, "Titles": [{"title": ["nested"]}]}, "Titles"),
        ({**DATACITE, "Creators": [{"nameType": "Personal"}]}, "Creators"),
        ({**DATACITE, "Publisher": {"name": ["x"]}}, "Publisher"),
    ],
    ids=[
        "datacite-unknown",
        "zenodo-unknown",
        "neither",
        "resource-type",
        "upload-type-list",
        "publication-type-object",
        "creators-text",
        "resource-type-unreadable",
        "title-unreadable",
        "creator-without-name",
        "publisher-unreadable",
    ],
)
def test_what_cannot_be_mapped_is_a_400_that_names_it(metadata, named) -> None:
    with pytest.raises(BadRequest) as err:
        crate_from_legacy(metadata)
    assert err.value.field == "metadata"
    assert named in err.value.detail


def test_a_patch_with_a_datacite_dict_is_stored_as_a_crate(client) -> None:
    pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
    resp = client.patch(f"/metadata/project/{pid}", json={"userId": uid(), "metadata": DATACITE})
    assert resp.status_code == 200, resp.json
    got = client.get(f"/metadata/project/{pid}", json={"userId": uid()}).json
    root = find_root(got)
    assert root["name"] == "This is a test title"
    people = [e for e in got["@graph"] if e.get("@type") == "Person"]
    assert [(p["familyName"], p["givenName"]) for p in people] == [("Mustermann", "Max")]


def test_a_patch_with_an_unmappable_dict_is_a_400_and_changes_nothing(client) -> None:
    pid = client.post("/metadata/project", json={"userId": uid()}).json["projectId"]
    before = client.get(f"/metadata/project/{pid}", json={"userId": uid()}).json
    resp = client.patch(
        f"/metadata/project/{pid}", json={"userId": uid(), "metadata": {"Titel": "x"}}
    )
    assert resp.status_code == 400
    assert resp.json["field"] == "metadata" and "Titel" in resp.json["detail"]
    assert resp.json["success"] is False and resp.json["message"] == resp.json["detail"]
    assert client.get(f"/metadata/project/{pid}", json={"userId": uid()}).json == before
