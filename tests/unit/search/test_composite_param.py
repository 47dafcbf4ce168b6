"""Composite parameters: index entries per combination, and ``a$b`` criteria run by mongomock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import mongomock
import pytest

from conformance.registry import SearchParameterDef, search_parameters, search_parameters_by_url
from fhir_server import outcomes
from fhir_server.search.index import SEP, IndexEntries
from fhir_server.search.types import composite, date

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"


def _definition(resource_type: str, code: str) -> SearchParameterDef:
    definition = search_parameters()[resource_type][code]
    assert definition.type == "composite"
    return definition


def _concept(code: str, system: str | None = LOINC) -> dict[str, Any]:
    coding = {"code": code} if system is None else {"system": system, "code": code}
    return {"coding": [coding]}


def _mmhg(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}


def _blood_pressure(systolic: float, diastolic: float, system: str | None = LOINC) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "code": _concept("85354-9", system),
        "component": [
            {"code": _concept(SYSTOLIC, system), "valueQuantity": _mmhg(systolic)},
            {"code": _concept(DIASTOLIC, system), "valueQuantity": _mmhg(diastolic)},
        ],
    }


def _observation(code: str, **value: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "code": _concept(code), **value}


def _index_all(resource: dict[str, Any]) -> IndexEntries:
    """Index every composite parameter of the resource's type."""
    resource_type = resource["resourceType"]
    out = IndexEntries()
    for definition in search_parameters()[resource_type].values():
        if definition.type == "composite":
            composite.index_composite(definition, resource_type, resource, out, search_parameters_by_url())
    return out


# -- index -------------------------------------------------------------------------------


def test_blood_pressure_components_are_one_entry_each() -> None:
    out = IndexEntries()
    composite.index_composite(
        _definition("Observation", "component-code-value-quantity"),
        "Observation",
        _blood_pressure(120, 80),
        out,
        search_parameters_by_url(),
    )
    p = "component-code-value-quantity"
    assert out.ranges == [
        {
            "p": p,
            "lo": 120.0,
            "hi": 120.0,
            "k": [f"c{SEP}{SYSTOLIC}", f"s{SEP}{LOINC}", f"sc{SEP}{LOINC}|{SYSTOLIC}"],
            "s": UCUM,
            "c": "mm[Hg]",
            "u": "mmHg",
        },
        {
            "p": p,
            "lo": 80.0,
            "hi": 80.0,
            "k": [f"c{SEP}{DIASTOLIC}", f"s{SEP}{LOINC}", f"sc{SEP}{LOINC}|{DIASTOLIC}"],
            "s": UCUM,
            "c": "mm[Hg]",
            "u": "mmHg",
        },
    ]
    assert any(r["p"] == p for r in out.ranges)


def test_code_value_quantity_is_the_observation_itself() -> None:
    glucose = _observation(
        "2339-0", valueQuantity={"value": 110, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}
    )
    out = _index_all(glucose)
    by_code = {r["p"]: r for r in out.ranges}
    assert by_code["code-value-quantity"] == {
        "p": "code-value-quantity",
        "lo": 110.0,
        "hi": 110.0,
        "k": [f"c{SEP}2339-0", f"s{SEP}{LOINC}", f"sc{SEP}{LOINC}|2339-0"],
        "s": UCUM,
        "c": "mg/dL",
        "u": "mg/dL",
    }
    assert "component-code-value-quantity" not in by_code
    assert "combo-code-value-quantity" in by_code


def test_token_string_and_date_components() -> None:
    concept = _index_all(_observation("x", valueCodeableConcept=_concept("123", SNOMED)))
    [entry] = [r for r in concept.ranges if r["p"] == "code-value-concept"]
    assert entry["k2"] == [f"c{SEP}123", f"s{SEP}{SNOMED}", f"sc{SEP}{SNOMED}|123"]
    assert "lo" not in entry
    text = _index_all(_observation("x", valueString="Positive für Influenza"))
    assert [r["k2"] for r in text.ranges if r["p"] == "code-value-string"] == ["positive fur influenza"]
    when = _index_all(_observation("x", valuePeriod={"start": "2020-06-15"}))
    [entry] = [r for r in when.ranges if r["p"] == "code-value-date"]
    assert (entry["lo"], entry["hi"]) == (datetime(2020, 6, 15, tzinfo=UTC), date.LATEST)


def test_molecular_sequence_has_three_components_and_resource_paths() -> None:
    out = _index_all(MOLECULAR_SEQUENCE)
    entries = [r for r in out.ranges if r["p"] == "chromosome-variant-coordinate"]
    keys = [f"c{SEP}1", f"s{SEP}http://chromosomes", f"sc{SEP}http://chromosomes|1"]
    assert entries == [
        {
            "p": "chromosome-variant-coordinate",
            "lo": 120.0,
            "hi": 120.0,
            "k": keys,
            "lo3": 130.0,
            "hi3": 130.0,
        },
        {
            "p": "chromosome-variant-coordinate",
            "lo": 500.0,
            "hi": 500.0,
            "k": keys,
            "lo3": 501.0,
            "hi3": 501.0,
        },
    ]


def test_document_reference_relationship_uses_the_corrected_expressions() -> None:
    out = _index_all(DOCUMENT_REFERENCE)
    assert out.ranges == [
        {
            "p": "relationship",
            "k": [f"i{SEP}9", f"r{SEP}DocumentReference/9"],
            "k2": [f"c{SEP}replaces", f"n{SEP}replaces"],
        }
    ]


def test_nodes_evaluated_by_the_caller_are_used() -> None:
    definition = _definition("Observation", COMPONENT)
    resource = _blood_pressure(120, 80)
    out = IndexEntries()
    nodes = resource["component"][:1]
    composite.index_composite(
        definition, "Observation", resource, out, search_parameters_by_url(), nodes=nodes
    )
    assert [r["lo"] for r in out.ranges] == [120.0]


def test_nothing_is_indexed_without_every_component() -> None:
    out = _index_all({"resourceType": "Observation", "valueQuantity": _mmhg(1)})
    assert out.ranges == []
    assert out.keys == set()


def test_every_r4_composite_can_be_indexed_and_searched() -> None:
    by_url = search_parameters_by_url()
    for resource_type, definitions in search_parameters().items():
        for definition in definitions.values():
            if definition.type == "composite":
                composite.index_composite(
                    definition, resource_type, {"resourceType": resource_type}, IndexEntries(), by_url
                )
                assert composite._components(definition, by_url)


# -- search ------------------------------------------------------------------------------

MOLECULAR_SEQUENCE = {
    "resourceType": "MolecularSequence",
    "referenceSeq": {
        "chromosome": {"coding": [{"system": "http://chromosomes", "code": "1"}]},
        "windowStart": 100,
        "windowEnd": 1000,
    },
    "variant": [{"start": 120, "end": 130}, {"start": 500, "end": 501}],
}
DOCUMENT_REFERENCE = {
    "resourceType": "DocumentReference",
    "relatesTo": [{"code": "replaces", "target": {"reference": "DocumentReference/9"}}],
}
RESOURCES: dict[str, dict[str, Any]] = {
    "bp_high": _blood_pressure(150, 95),
    "bp_normal": _blood_pressure(118, 76),
    "bp_cross": _blood_pressure(90, 140),  # the diastolic is above the systolic
    "bp_no_system": _blood_pressure(135, 85, system=None),
    "glucose": _observation(
        "2339-0", valueQuantity={"value": 110, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}
    ),
    "flu_test": _observation("flu", valueString="Positive for influenza A"),
    "smoker": _observation("smoking", valueCodeableConcept=_concept("77176002", SNOMED)),
    "onset": _observation("onset", valueDateTime="2020-06-15"),
    "sequence": MOLECULAR_SEQUENCE,
    "document": DOCUMENT_REFERENCE,
}


@pytest.fixture(scope="module")
def collection() -> Iterator[Any]:
    client: Any = mongomock.MongoClient(tz_aware=True)
    client.db.resources.insert_many(
        [{"_id": name, **_index_all(r).as_fields()} for name, r in RESOURCES.items()]
    )
    yield client.db.resources
    client.close()


def _select(collection: Any, resource_type: str, code: str, value: str) -> set[str]:
    definition = _definition(resource_type, code)
    now = datetime(2020, 6, 15, tzinfo=UTC)
    criterion = composite.criterion_composite(definition, value, None, search_parameters_by_url(), now=now)
    return {d["_id"] for d in collection.find(criterion)}


COMPONENT = "component-code-value-quantity"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # the code and the value must hold for the same component
        (f"{LOINC}|{SYSTOLIC}$gt130", {"bp_high"}),
        (f"{SYSTOLIC}$gt130", {"bp_high", "bp_no_system"}),
        (f"|{SYSTOLIC}$gt130", {"bp_no_system"}),
        (f"{LOINC}|$gt130", {"bp_high", "bp_cross"}),
        (f"{DIASTOLIC}$gt130", {"bp_cross"}),
        # every prefix
        (f"{SYSTOLIC}$118", {"bp_normal"}),
        (f"{SYSTOLIC}$eq118|{UCUM}|mm[Hg]", {"bp_normal"}),
        (f"{SYSTOLIC}$118||mmHg", {"bp_normal"}),
        (f"{SYSTOLIC}$118||mg", set()),
        (f"{SYSTOLIC}$ne118", {"bp_high", "bp_cross", "bp_no_system"}),
        (f"{SYSTOLIC}$lt118", {"bp_cross"}),
        (f"{SYSTOLIC}$le118", {"bp_cross", "bp_normal"}),
        (f"{SYSTOLIC}$ge135", {"bp_high", "bp_no_system"}),
        (f"{SYSTOLIC}$sa135", {"bp_high"}),
        (f"{SYSTOLIC}$eb118", {"bp_cross"}),
        (f"{SYSTOLIC}$ap140", {"bp_high", "bp_no_system"}),
        (f"{DIASTOLIC}$ap80", {"bp_normal", "bp_no_system"}),
    ],
)
def test_component_code_value_quantity(collection: Any, value: str, expected: set[str]) -> None:
    assert _select(collection, "Observation", COMPONENT, value) == expected


def test_code_value_quantity_and_combo(collection: Any) -> None:
    assert _select(
        collection, "Observation", "code-value-quantity", f"{LOINC}|2339-0$ge100|{UCUM}|mg/dL"
    ) == {"glucose"}
    assert _select(collection, "Observation", "code-value-quantity", f"{SYSTOLIC}$gt100") == set()
    assert _select(collection, "Observation", "combo-code-value-quantity", f"{SYSTOLIC}$gt140") == {"bp_high"}
    assert _select(collection, "Observation", "combo-code-value-quantity", "2339-0$lt111") == {"glucose"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("onset$2020-06-15", {"onset"}),
        ("onset$2020", {"onset"}),
        ("onset$eq2020-06", {"onset"}),
        ("onset$ne2020-06-15", set()),
        ("onset$ne2020-06-16", {"onset"}),
        ("onset$gt2020-06-14", {"onset"}),
        ("onset$gt2020-06-15", set()),
        ("onset$lt2020-06-16", {"onset"}),
        ("onset$lt2020-06-15", set()),
        ("onset$ge2020-06-15", {"onset"}),
        ("onset$le2020-06-14", set()),
        ("onset$sa2020-06-14", {"onset"}),
        ("onset$eb2020-06-15", set()),
        ("onset$eb2020-06-16", {"onset"}),
        ("onset$ap2020-06-16", {"onset"}),
        ("onset$ap2020-06-17", set()),
        ("flu$2020-06-15", set()),
    ],
)
def test_code_value_date(collection: Any, value: str, expected: set[str]) -> None:
    assert _select(collection, "Observation", "code-value-date", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("flu$positive", {"flu_test"}),
        ("flu$POSITIVE FOR", {"flu_test"}),
        ("flu$for", set()),
        ("onset$p", set()),
    ],
)
def test_code_value_string_starts_with(collection: Any, value: str, expected: set[str]) -> None:
    assert _select(collection, "Observation", "code-value-string", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"smoking${SNOMED}|77176002", {"smoker"}),
        ("smoking$77176002", {"smoker"}),
        (f"{LOINC}|smoking${SNOMED}|", {"smoker"}),
        ("smoking$|77176002", set()),
        ("flu$77176002", set()),
    ],
)
def test_code_value_concept(collection: Any, value: str, expected: set[str]) -> None:
    assert _select(collection, "Observation", "code-value-concept", value) == expected


@pytest.mark.parametrize(
    ("code", "value", "expected"),
    [
        ("chromosome-variant-coordinate", "1$ge120$le130", {"sequence"}),
        ("chromosome-variant-coordinate", "1$gt120$lt130", set()),
        ("chromosome-variant-coordinate", "1$ge500$lt501", set()),
        ("chromosome-variant-coordinate", "1$ge500$le501", {"sequence"}),
        ("chromosome-variant-coordinate", "2$ge120$le130", set()),
        ("chromosome-variant-coordinate", "1$ne120$130", set()),
        ("chromosome-variant-coordinate", "1$ne500$130", {"sequence"}),
        ("chromosome-variant-coordinate", "1$120$ne501", {"sequence"}),
        ("chromosome-window-coordinate", "http://chromosomes|1$100$1000", {"sequence"}),
    ],
)
def test_molecular_sequence_coordinates(collection: Any, code: str, value: str, expected: set[str]) -> None:
    assert _select(collection, "MolecularSequence", code, value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("DocumentReference/9$replaces", {"document"}),
        ("9$replaces", {"document"}),
        ("DocumentReference/9$appends", set()),
        ("DocumentReference/8$replaces", set()),
    ],
)
def test_document_reference_relationship(collection: Any, value: str, expected: set[str]) -> None:
    assert _select(collection, "DocumentReference", "relationship", value) == expected


def test_a_criterion_is_one_elem_match() -> None:
    criterion = composite.criterion_composite(
        _definition("Observation", COMPONENT),
        f"{LOINC}|{SYSTOLIC}$ge5||mmHg",
        None,
        search_parameters_by_url(),
    )
    assert criterion == {
        "ir": {
            "$elemMatch": {
                "p": COMPONENT,
                "k": f"sc{SEP}{LOINC}|{SYSTOLIC}",
                "$or": [{"c": "mmHg"}, {"u": "mmHg"}],
                "hi": {"$gte": 5.0},
            }
        }
    }


def test_escaped_dollars_belong_to_the_part() -> None:
    criterion = composite.criterion_composite(
        _definition("Observation", "code-value-concept"), r"a\$b$c", None, search_parameters_by_url()
    )
    assert criterion["ir"]["$elemMatch"]["k"] == f"c{SEP}a$b"


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (COMPONENT, SYSTOLIC),
        (COMPONENT, f"{SYSTOLIC}$5$6"),
        (COMPONENT, f"{SYSTOLIC}$five"),
        (COMPONENT, f"{SYSTOLIC}$xx5"),
        (COMPONENT, "$5"),
        ("code-value-date", "x$2020-13"),
        ("code-value-string", "x$"),
    ],
)
def test_bad_values_are_invalid_requests(code: str, value: str) -> None:
    with pytest.raises(outcomes.InvalidRequest) as raised:
        composite.criterion_composite(
            _definition("Observation", code), value, None, search_parameters_by_url()
        )
    assert raised.value.issues[0].expression == (code,)


def test_modifiers_are_invalid_requests() -> None:
    with pytest.raises(outcomes.InvalidRequest):
        composite.criterion_composite(
            _definition("Observation", COMPONENT), f"{SYSTOLIC}$5", "missing", search_parameters_by_url()
        )
    assert composite.MODIFIERS == ()
