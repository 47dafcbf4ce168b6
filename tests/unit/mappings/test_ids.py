"""Identifier systems from assigning authorities, conditional URLs, deterministic fullUrls."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from mappings.ids import authority_system, full_url, identifier_query, local_system


@pytest.mark.parametrize(
    ("hd", "system"),
    [
        (("GHH", "1.2.840.114350.1.13.99", "ISO"), "urn:oid:1.2.840.114350.1.13.99"),
        (("", "2.16.840.1.113883.3.72", ""), "urn:oid:2.16.840.1.113883.3.72"),
        (
            ("X", "9B5A6C3E-1111-4C2A-8F00-0123456789AB", "UUID"),
            "urn:uuid:9b5a6c3e-1111-4c2a-8f00-0123456789ab",
        ),
        (("", "https://hospital.example/mrn", "URI"), "https://hospital.example/mrn"),
        (("GHH", "", ""), "urn:id:GHH"),
        (("GOOD HEALTH", "", ""), "urn:id:GOOD_HEALTH"),
        (("", "LOCAL-AUTH", "L"), "urn:id:LOCAL-AUTH"),
        (("GHH", "not-an-oid", "ISO"), "urn:id:GHH"),
        (("", "", ""), ""),
    ],
)
def test_authority_system(hd: tuple[str, str, str], system: str) -> None:
    assert authority_system(*hd) == system


def test_identifier_query_escapes_search_specials_and_url_characters() -> None:
    assert identifier_query("urn:id:GHH", "PAT1234") == "identifier=urn:id:GHH|PAT1234"
    escaped = identifier_query("urn:id:GHH", "A|B,C$D\\E")
    assert unquote(escaped) == "identifier=urn:id:GHH|A\\|B\\,C\\$D\\\\E"
    assert identifier_query("urn:id:GHH", "a b&c#d") == "identifier=urn:id:GHH|a%20b%26c%23d"
    assert identifier_query("urn:oid:1.2.3", "x") == "identifier=urn:oid:1.2.3|x"


def test_full_urls_are_deterministic_and_distinct_per_type_and_identity() -> None:
    a = full_url("Patient", "urn:id:GHH", "1")
    assert a == full_url("Patient", "urn:id:GHH", "1")
    assert a.startswith("urn:uuid:")
    assert a != full_url("Encounter", "urn:id:GHH", "1")
    assert a != full_url("Patient", "urn:id:GHH", "2")
    assert a != full_url("Patient", "urn:id:OTHER", "1")


def test_local_system_has_no_whitespace() -> None:
    assert local_system(" ROYAL  INFIRMARY ") == "urn:id:ROYAL_INFIRMARY"
