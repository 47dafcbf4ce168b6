from __future__ import annotations

from fhir_server.search.types import reference, string, token, uri

IDENT = {"system": "http://mrn", "value": "A1"}
CONCEPT = {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}], "text": "Hb"}


def test_token_forms() -> None:
    assert token.matches(IDENT, "A1", None)
    assert token.matches(IDENT, "http://mrn|A1", None)
    assert not token.matches(IDENT, "http://other|A1", None)
    assert token.matches(IDENT, "http://mrn|", None)
    assert not token.matches(IDENT, "|A1", None)
    assert token.matches({"value": "A1"}, "|A1", None)
    assert token.matches(CONCEPT, "http://loinc.org|718-7", None)
    assert token.matches(CONCEPT, "hb", "text")
    assert token.matches("female", "female", None)
    assert token.matches(True, "true", None)


def test_string_prefix_accents_and_modifiers() -> None:
    name = {"family": "Müller", "given": ["Anna"]}
    assert string.matches(name, "mul", None)
    assert string.matches(name, "ANN", None)
    assert not string.matches(name, "ull", None)
    assert string.matches(name, "ull", "contains")
    assert string.matches(name, "Müller", "exact")
    assert not string.matches(name, "muller", "exact")


def test_reference_forms() -> None:
    ref = {"reference": "Patient/123"}
    assert reference.matches(ref, "123", None)
    assert reference.matches(ref, "Patient/123", None)
    assert reference.matches(ref, "http://server/fhir/Patient/123", None)
    assert not reference.matches(ref, "Group/123", None)
    assert reference.matches(ref, "123", "Patient")
    assert not reference.matches(ref, "124", None)


def test_uri_modifiers() -> None:
    assert uri.matches("http://a/b/c", "http://a/b/c", None)
    assert uri.matches("http://a/b/c", "http://a/b", "below")
    assert uri.matches("http://a/b", "http://a/b/c", "above")
    assert not uri.matches("http://a/b/c", "http://a/b", None)
