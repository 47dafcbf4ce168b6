"""Property: for random Patients/Observations and random queries, the server's search results
equal those of the plain-Python reference evaluator (tests/reference_search.py).

Each example loads a small data set (at most 12 resources) into a fresh database through
``PUT /fhir/{type}/{id}`` and runs a few searches over string, token, date, quantity and
reference parameters, with modifiers and prefixes, comma (OR) and repeated (AND) values.
Query values are drawn from the values in the data, their truncations and case/accent
variants, and near misses (neighbouring dates and numbers, precision boundaries, wrong
systems and types), so many queries select something and many sit on an edge. A fixed
example (``_edges``) runs first and puts one query on each edge the random ones reach rarely.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import hypothesis
import hypothesis.strategies as st
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given

from fhir_server import create_app
from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings
from tests.integration.helpers import headers
from tests.reference_search import date_range, fold, search

Resource = dict[str, Any]
Query = tuple[str, list[tuple[str, str]]]  # (resource type, [(name[:modifier], value)])

UCUM = "http://unitsofmeasure.org"
MRN = "http://hospital.example/mrn"
OID = "urn:oid:1.2.36.146.595.217.0.1"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"

FAMILIES = (
    "Müller",
    "Muller",
    "MÜLLER",
    "Mueller",
    "Müller-Lüdenscheidt",
    "Núñez",
    "Nunez",
    "García",
    "Ångström",
    "Dvořák",
    "Zoë",
    "Chalmers",
    "O'Brien",
    "van der Berg",
    "St. John",
    "Strauß",
)
GIVEN = ("Anna", "José", "Zoë", "Peter")
GENDERS = ("male", "female", "other", "unknown")
ID_SYSTEMS = (MRN, OID, None)
ID_VALUES = ("A1", "a1", "B2", "12345", "123456")
PRACTITIONERS = ("Practitioner/dr-a", "Practitioner/dr-b", "Organization/org-1", "PractitionerRole/role-1")
CODINGS = (
    (LOINC, "718-7"),
    (LOINC, "2345-7"),
    (LOINC, "8867-4"),
    (SNOMED, "718-7"),
    (SNOMED, "271649006"),
    (None, "local-1"),
)
UNITS: tuple[dict[str, str], ...] = (
    {"unit": "mg", "system": UCUM, "code": "mg"},
    {"unit": "g", "system": UCUM, "code": "g"},
    {"unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
    {"unit": "beats/minute", "system": UCUM, "code": "/min"},
    {"unit": "mg"},
)
NUMBERS = (
    "5.4",
    "5.35",
    "5.45",
    "5.449",
    "1.05",
    "0.15",
    "2.675",
    "72",
    "72.0",
    "71.5",
    "72.5",
    "100",
    "99.5",
    "110",
    "0.05",
    "0",
    "-2.5",
)
TIMES = ("T00:00:00Z", "T10:30:15+02:00", "T23:30:00-05:00", "T12:00:00.500Z")


# -- data ----------------------------------------------------------------------------------


@st.composite
def dates(draw: st.DrawFn, years: tuple[int, ...], *, times: bool = False) -> str:
    """YYYY, YYYY-MM, YYYY-MM-DD (or, with ``times``, a dateTime with a zone)."""
    year = draw(st.sampled_from(years))
    precision = draw(st.sampled_from(("year", "month", "day", "time") if times else ("year", "month", "day")))
    if precision == "year":
        return f"{year}"
    month = draw(st.sampled_from((1, 2, 3, 12)))
    if precision == "month":
        return f"{year}-{month:02d}"
    day = draw(st.sampled_from((1, 15, calendar.monthrange(year, month)[1])))
    text = f"{year}-{month:02d}-{day:02d}"
    return text + draw(st.sampled_from(TIMES)) if precision == "time" else text


@st.composite
def patients(draw: st.DrawFn, ident: str) -> Resource:
    patient: Resource = {"resourceType": "Patient", "id": ident}
    names = draw(
        st.lists(
            st.fixed_dictionaries(
                {"given": st.lists(st.sampled_from(GIVEN), min_size=1, max_size=1)},
                optional={"family": st.sampled_from(FAMILIES)},
            ),
            max_size=2,
        )
    )
    if names:
        patient["name"] = names
    if draw(st.booleans()):
        patient["gender"] = draw(st.sampled_from(GENDERS))
    identifiers = draw(
        st.lists(st.tuples(st.sampled_from(ID_SYSTEMS), st.sampled_from(ID_VALUES)), max_size=2)
    )
    if identifiers:
        patient["identifier"] = [
            {"value": v} if s is None else {"system": s, "value": v} for s, v in identifiers
        ]
    if draw(st.integers(0, 3)):
        patient["birthDate"] = draw(dates((1969, 1970)))
    practitioners = draw(st.lists(st.sampled_from(PRACTITIONERS), max_size=2, unique=True))
    if practitioners:
        patient["generalPractitioner"] = [{"reference": r} for r in practitioners]
    return patient


@st.composite
def periods(draw: st.DrawFn) -> dict[str, str]:
    first, second = draw(dates((2019, 2020), times=True)), draw(dates((2019, 2020), times=True))
    start, end = sorted((first, second), key=lambda d: date_range(d)[0])
    shape = draw(st.sampled_from(("closed", "open-end", "open-start")))
    if shape == "open-end":
        return {"start": start}
    if shape == "open-start":
        return {"end": end}
    return {"start": start, "end": end}


@st.composite
def observations(draw: st.DrawFn, ident: str, patient_ids: list[str]) -> Resource:
    codings = draw(st.lists(st.sampled_from(CODINGS), min_size=1, max_size=2, unique=True))
    observation: Resource = {
        "resourceType": "Observation",
        "id": ident,
        "status": "final",
        "code": {"coding": [{"code": c} if s is None else {"system": s, "code": c} for s, c in codings]},
    }
    subjects = [f"Patient/{p}" for p in patient_ids] + ["Group/g1", "Patient/nobody"]
    if draw(st.integers(0, 4)):
        observation["subject"] = {"reference": draw(st.sampled_from(subjects))}
    effective = draw(st.sampled_from(("none", "dateTime", "dateTime", "period")))
    if effective == "dateTime":
        observation["effectiveDateTime"] = draw(dates((2019, 2020), times=True))
    elif effective == "period":
        observation["effectivePeriod"] = draw(periods())
    value = draw(st.sampled_from(("none", "quantity", "quantity", "quantity", "string")))
    if value == "quantity":
        number = draw(st.sampled_from(NUMBERS))
        observation["valueQuantity"] = {"value": float(number), **draw(st.sampled_from(UNITS))}
    elif value == "string":
        observation["valueString"] = "positive"
    return observation


# -- queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """Candidate query values: ``present`` ones come from the data (most select something),
    ``near`` ones are variants (neighbours, other systems, other precisions)."""

    present: tuple[str, ...]
    near: tuple[str, ...]

    @classmethod
    def of(cls, present: set[str], near: set[str]) -> Pool:
        return cls(tuple(sorted(present)), tuple(sorted(near - present)))

    def values(self) -> st.SearchStrategy[str]:
        """As often a present value as a near one."""
        choices = [st.sampled_from(p) for p in (self.present, self.near) if p]
        return st.one_of(*choices)


def _string_pool(families: set[str]) -> Pool:
    """Prefixes, infixes, case and accent variants of the families, and near misses."""
    present: set[str] = set()
    near = {"Müller", "Garcia", "zz", "Mü", "ller"}
    for text in families:
        present.update({text, text.upper(), text.lower(), fold(text), fold(text).upper()})
        for size in (1, 2, 3, 4):
            present.update({text[:size], text[1 : 1 + size], fold(text)[:size]})
        near.update({text + "x", text[:-1] + "q", text[1:]})
    return Pool.of({v for v in present if v.strip()}, near)


def _token_pool(pairs: set[tuple[str | None, str]], systems: tuple[str, ...], codes: tuple[str, ...]) -> Pool:
    """``code``, ``system|code``, ``|code``, ``system|`` for the pairs in the data; the same
    forms for the other combinations of systems (and no system) and codes."""

    def forms(system: str | None, code: str) -> set[str]:
        return {code, f"|{code}"} if system is None else {code, f"{system}|{code}", f"{system}|"}

    present = {f for s, c in pairs for f in forms(s, c)}
    near = {f for s in (*systems, None) for c in {c for _, c in pairs} for f in forms(s, c)}
    near.update(codes)
    return Pool.of(present, near)


def _neighbours(text: str) -> set[str]:
    """The values just before and after a date at its own precision; for a day, also the
    first and last second around its start."""
    low, high = date_range(text)
    if len(text) == 4:
        return {str(int(text) - 1), str(int(text) + 1)}
    if len(text) == 7:
        return {(low - timedelta(days=1)).strftime("%Y-%m"), high.strftime("%Y-%m")}
    before = low - timedelta(days=1)
    return {
        before.strftime("%Y-%m-%d"),
        high.strftime("%Y-%m-%d"),
        low.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (low - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _date_pool(data: list[str], fixed: tuple[str, ...]) -> Pool:
    """The dates in the data at their own and coarser precisions; their neighbours and a few
    fixed values as near misses."""
    present: set[str] = set()
    near = set(fixed)
    for text in data:
        truncations = {text[:4], text[:7], text[:10]}
        present.update({text, *truncations})
        for truncated in truncations:
            near.update(_neighbours(truncated))
    return Pool.of(present, near)


def _number_pool(data: list[float]) -> Pool:
    """The numbers in the data; as near values, the search numbers whose precision range
    starts or ends exactly at a data value, those 10 % away (``ap``), and a few more."""
    present = {text for number in data for text in (repr(number), repr(number).removesuffix(".0"))}
    near = {"0"}
    for number in data:
        value = Decimal(repr(number))
        for places in range(4):
            unit = Decimal(1).scaleb(-places)
            for candidate in (
                value - unit / 2,
                value + unit / 2,
                value / Decimal("1.1"),
                value / Decimal("0.9"),
            ):
                if candidate == candidate.quantize(unit):
                    near.add(str(candidate.quantize(unit)))
    return Pool.of(present, near)


@dataclass(frozen=True)
class Pools:
    """Query values for each parameter, drawn from one data set."""

    family: Pool
    gender: Pool
    identifier: Pool
    birthdate: Pool
    practitioner: Pool
    code: Pool
    date: Pool
    number: Pool
    subject: Pool
    subject_ids: Pool

    @classmethod
    def of(cls, resources: list[Resource]) -> Pools:
        patients = [r for r in resources if r["resourceType"] == "Patient"]
        observations = [r for r in resources if r["resourceType"] == "Observation"]
        practitioners = {g["reference"] for p in patients for g in p.get("generalPractitioner", [])}
        subjects = {o["subject"]["reference"] for o in observations if "subject" in o}
        effective = [o["effectiveDateTime"] for o in observations if "effectiveDateTime" in o]
        effective += [d for o in observations for d in o.get("effectivePeriod", {}).values()]
        return cls(
            family=_string_pool({n["family"] for p in patients for n in p.get("name", []) if "family" in n}),
            gender=Pool.of({p["gender"] for p in patients if "gender" in p}, {*GENDERS, "MALE"}),
            identifier=_token_pool(
                {(i.get("system"), i["value"]) for p in patients for i in p.get("identifier", [])},
                (*ID_SYSTEMS[:-1], "http://other.example/ids"),
                ("A1", "b2", "1234"),
            ),
            birthdate=_date_pool(
                [p["birthDate"] for p in patients if "birthDate" in p], ("1970", "1969-12-31")
            ),
            practitioner=Pool.of(
                practitioners | {r.partition("/")[2] for r in practitioners},
                {*PRACTITIONERS, "dr-a", "Organization/dr-a", "Practitioner/org-1"},
            ),
            code=_token_pool(
                {(c.get("system"), c["code"]) for o in observations for c in o["code"]["coding"]},
                (LOINC, SNOMED, "http://other.example/codes"),
                ("718-7", "271649006", "local-1"),
            ),
            date=_date_pool(effective, ("2019", "2020-03-15", "2020-03-15T10:30:15Z", "2020-12-31")),
            number=_number_pool([o["valueQuantity"]["value"] for o in observations if "valueQuantity" in o]),
            subject=Pool.of(
                subjects | {r.partition("/")[2] for r in subjects},
                {"Patient/p0", "p1", "Group/p0", "Patient/g1"},
            ),
            subject_ids=Pool.of({r.partition("/")[2] for r in subjects}, {"p0", "g1", "nobody"}),
        )


def _or(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One value, or two joined by a comma (OR)."""
    return st.lists(values, min_size=1, max_size=2, unique=True).map(",".join)


def _plain(
    values: st.SearchStrategy[str], modifiers: tuple[str, ...] = ("",)
) -> st.SearchStrategy[tuple[str, str]]:
    return st.tuples(st.sampled_from(modifiers), _or(values))


MISSING = st.tuples(st.just(":missing"), st.sampled_from(("true", "false")))
DATE_PREFIXES = ("", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
NUMBER_PREFIXES = ("", "eq", *DATE_PREFIXES, "ap")  # the precision matters without a prefix, eq, ne, ap
QUANTITY_UNITS = (
    "",
    "",
    f"|{UCUM}|mg",
    "||mg",
    f"|{UCUM}|/min",
    "||beats/minute",
    "|http://other.example|mg",
)


def _mostly(*common: st.SearchStrategy[tuple[str, str]]) -> st.SearchStrategy[tuple[str, str]]:
    """The common forms, three times as often as ``:missing``."""
    return st.one_of(*common, *common, *common, MISSING)


def _token(pool: Pool) -> st.SearchStrategy[tuple[str, str]]:
    return _mostly(_plain(pool.values()), _plain(pool.values()), st.tuples(st.just(":not"), pool.values()))


def _date(pool: Pool) -> st.SearchStrategy[tuple[str, str]]:
    return _mostly(_plain(st.tuples(st.sampled_from(DATE_PREFIXES), pool.values()).map("".join)))


Criterion = st.SearchStrategy[tuple[str, str]]


def criteria(pools: Pools, resource_type: str) -> dict[str, Criterion]:
    """For each parameter of ``resource_type``, its ``(name[:modifier], value)`` pairs."""
    if resource_type == "Patient":
        by_name = {
            "family": _mostly(_plain(pools.family.values(), ("", ":exact", ":contains"))),
            "gender": _token(pools.gender),
            "identifier": _token(pools.identifier),
            "birthdate": _date(pools.birthdate),
            "general-practitioner": _mostly(
                _plain(pools.practitioner.values()),
                st.tuples(
                    st.sampled_from((":Practitioner", ":Organization")), st.sampled_from(("dr-a", "org-1"))
                ),
            ),
        }
    else:
        quantity = st.tuples(
            st.sampled_from(NUMBER_PREFIXES), pools.number.values(), st.sampled_from(QUANTITY_UNITS)
        ).map("".join)
        by_name = {
            "code": _token(pools.code),
            "value-quantity": _mostly(_plain(quantity)),
            "date": _date(pools.date),
            "subject": _mostly(
                _plain(pools.subject.values()),
                st.tuples(st.sampled_from((":Patient", ":Group")), pools.subject_ids.values()),
            ),
        }
    return {name: strategy.map(_named(name)) for name, strategy in by_name.items()}


def _named(name: str) -> Callable[[tuple[str, str]], tuple[str, str]]:
    """``(":modifier", value)`` -> ``("name:modifier", value)``."""

    def named(pair: tuple[str, str]) -> tuple[str, str]:
        return name + pair[0], pair[1]

    return named


@dataclass
class Scenario:
    resources: list[Resource]
    queries: list[Query]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """1-6 Patients and 1-6 Observations, and 8-16 queries: most on one parameter chosen for
    the example (so its edges get hit), the others of 1-3 criteria on any parameters."""
    patient_ids = [f"p{i}" for i in range(draw(st.integers(1, 6)))]
    resources = [draw(patients(p)) for p in patient_ids]
    resources += [draw(observations(f"o{i}", patient_ids)) for i in range(draw(st.integers(1, 6)))]
    by_type = {t: criteria(Pools.of(resources), t) for t in ("Patient", "Observation")}
    focus_type, focus = draw(st.sampled_from([(t, name) for t in by_type for name in sorted(by_type[t])]))
    queries: list[Query] = []
    for _ in range(draw(st.integers(8, 16))):
        if draw(st.integers(0, 2)):
            queries.append((focus_type, [draw(by_type[focus_type][focus])]))
            continue
        resource_type = draw(st.sampled_from(sorted(by_type)))
        any_criterion = st.one_of(*by_type[resource_type].values())
        size = draw(st.sampled_from((1, 2, 3)))
        queries.append((resource_type, draw(st.lists(any_criterion, min_size=1, max_size=size))))
    return Scenario(resources, queries)


def _edges() -> Scenario:
    """A fixed example run before the random ones: each query sits on one edge of the spec
    (precision boundaries, adjacent ranges, time zones, units vs codes, systems, types)."""
    p0 = {
        "resourceType": "Patient",
        "id": "p0",
        "name": [{"family": "Müller", "given": ["Anna"]}],
        "gender": "male",
        "identifier": [{"system": MRN, "value": "A1"}],
        "birthDate": "1970-03-01",
        "generalPractitioner": [{"reference": "Practitioner/dr-a"}],
    }
    p1 = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"family": "Mueller"}],
        "identifier": [{"value": "A1"}],
        "birthDate": "1970",
        "generalPractitioner": [{"reference": "Organization/org-1"}],
    }
    p2 = {
        "resourceType": "Patient",
        "id": "p2",
        "identifier": [{"system": OID, "value": "a1"}],
        "birthDate": "1970-02",
    }
    code = {"coding": [{"system": LOINC, "code": "718-7"}]}
    o0 = {
        "resourceType": "Observation",
        "id": "o0",
        "status": "final",
        "code": code,
        "subject": {"reference": "Patient/p0"},
        "effectiveDateTime": "2020-12-31T23:30:00-05:00",
        "valueQuantity": {"value": 5.35, **UNITS[0]},
    }
    o1 = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": SNOMED, "code": "718-7"}, {"code": "local-1"}]},
        "subject": {"reference": "Group/g1"},
        "effectivePeriod": {"start": "2020-03-01"},
        "valueQuantity": {"value": 99.5, **UNITS[3]},
    }
    o2 = {
        "resourceType": "Observation",
        "id": "o2",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "2345-7"}]},
        "effectivePeriod": {"start": "2019-12-15T10:30:15+02:00", "end": "2020-02"},
        "valueQuantity": {"value": 110.0, "unit": "mg"},
    }
    o3 = {
        "resourceType": "Observation",
        "id": "o3",
        "status": "final",
        "code": {"coding": [{"code": "local-1"}]},
        "subject": {"reference": "Patient/p1"},
        "valueString": "positive",
    }
    patient_queries = [
        *(
            ("family" + m, v)
            for m, v in [("", "mu"), ("", "ller"), ("", "MÜLLER"), (":exact", "Müller"), (":contains", "ELL")]
        ),
        ("family:missing", "true"),
        ("gender:not", "male"),
        ("gender", "male,female"),
        *(("identifier", v) for v in ("|A1", "A1", f"{MRN}|", f"{MRN}|a1")),
        ("identifier:not", "a1"),
        *(
            ("birthdate", v)
            for v in ("sa1970-02", "eb1970-03", "ge1970-03", "le1970-02-28", "ne1970", "1970")
        ),
        ("general-practitioner", "dr-a"),
        ("general-practitioner:Organization", "org-1"),
        ("general-practitioner", "Practitioner/org-1"),
    ]
    quantities = ("5.4", "5.3", "ne5.4", "100", "99", "ap100", "ap121", "gt99.5", "ge99.5", "sa110", "eb5.35")
    units = ("5.35||mg", "110||mg", "99.5||beats/minute", f"99.5|{UCUM}|/min", f"99.5|{UCUM}|beats/minute")
    dates = ("2021-01-01", "2020", "sa2020-02-29", "eb2020-03-01", "ge2020-03", "le2019", "2020-02", "ne2021")
    observation_queries = [
        *(("value-quantity", v) for v in (*quantities, *units)),
        *(("date", v) for v in dates),
        *(("code", v) for v in ("|local-1", f"{LOINC}|", "718-7")),
        ("code:not", f"{SNOMED}|718-7"),
        *(("subject", v) for v in ("p0", "Patient/p1,g1")),
        ("subject:Group", "g1"),
        ("subject:missing", "true"),
    ]
    queries: list[Query] = [("Patient", [q]) for q in patient_queries]
    queries += [("Patient", [("birthdate", "1970"), ("birthdate", "ge1970-02")])]  # AND
    queries += [("Observation", [q]) for q in observation_queries]
    return Scenario([p0, p1, p2, o0, o1, o2, o3], queries)


# -- the property --------------------------------------------------------------------------


def _search_ids(client: FlaskClient, resource_type: str, query: list[tuple[str, str]]) -> set[str]:
    url = f"/fhir/{resource_type}?{urlencode([*query, ('_count', '1000')])}"
    response = client.get(url)
    assert response.status_code == 200, (url, response.get_json())
    bundle = response.get_json()
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


@hypothesis.settings(
    max_examples=60,
    deadline=None,
    database=None,  # no saved examples: a failure prints the full Scenario to reproduce it
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
@example(scenario=_edges())
def test_search_agrees_with_the_reference(settings: Settings, scenario: Scenario) -> None:
    assert settings.mongodb_uri
    database = f"prop_{uuid.uuid4().hex[:16]}"
    repository = MongoRepository(settings.mongodb_uri, database)
    try:
        client = create_app(settings.with_overrides(database=database), repository=repository).test_client()
        for resource in scenario.resources:
            response = client.put(
                f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=headers()
            )
            assert response.status_code == 201, (resource, response.get_json())
        for resource_type, query in scenario.queries:
            expected = search(scenario.resources, resource_type, query, base=settings.fhir_base)
            got = _search_ids(client, resource_type, query)
            assert got == expected, f"{resource_type}?{urlencode(query)}"
    finally:
        repository._client.drop_database(database)
        repository.close()
