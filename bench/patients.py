"""Realistic, deterministic Patient resources for the benchmarks (about 1.5 kB of JSON each).

``patient(i)`` is the i-th seed Patient; the same ``i`` always gives the same resource.
``create_template(run)`` and ``update_template()`` are bodies for the load generator, with
``{seq}`` (unique per request) and ``{id}`` placeholders inside string values.
"""

from __future__ import annotations

import json
import random
from typing import Any

_FAMILY = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
]
_GIVEN_F = [
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Nancy",
    "Lisa",
]
_GIVEN_M = [
    "James",
    "Robert",
    "John",
    "Michael",
    "David",
    "William",
    "Richard",
    "Joseph",
    "Thomas",
    "Charles",
    "Daniel",
    "Mark",
]
_STREETS = [
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Main",
    "Church",
    "High",
]
_CITIES = (
    ("Springfield", "IL", "627"),
    ("Madison", "WI", "537"),
    ("Franklin", "TN", "370"),
    ("Georgetown", "TX", "786"),
    ("Salem", "OR", "973"),
)
_MARITAL = (("M", "Married"), ("S", "Never Married"), ("D", "Divorced"), ("W", "Widowed"))
_LANGS = (("en-US", "English (United States)"), ("es", "Spanish"), ("vi", "Vietnamese"))
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def patient(i: int) -> dict[str, Any]:
    rng = random.Random(i)
    female = rng.random() < 0.5
    family = rng.choice(_FAMILY)
    given = [rng.choice(_GIVEN_F if female else _GIVEN_M), rng.choice(_GIVEN_F if female else _GIVEN_M)]
    city, state, zip3 = rng.choice(_CITIES)
    marital = rng.choice(_MARITAL)
    lang = rng.choice(_LANGS)
    phone = f"+1-{rng.randint(200, 989)}-555-{rng.randint(0, 9999):04d}"
    year = rng.randint(1935, 2020)
    return {
        "resourceType": "Patient",
        "identifier": [
            {
                "use": "usual",
                "type": {"coding": [{"system": _V2_0203, "code": "MR", "display": "Medical record number"}]},
                "system": "urn:oid:2.16.840.1.113883.19.5.99999.1",
                "value": f"MRN{1000000 + i}",
                "assigner": {"display": "General Hospital"},
            },
            {
                "use": "official",
                "type": {"coding": [{"system": _V2_0203, "code": "SS", "display": "Social Security number"}]},
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": f"999-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
            },
        ],
        "active": True,
        "name": [
            {"use": "official", "family": family, "given": given, "prefix": ["Ms." if female else "Mr."]},
            {"use": "maiden" if female else "nickname", "family": rng.choice(_FAMILY), "given": given[:1]},
        ],
        "telecom": [
            {"system": "phone", "value": phone, "use": "home", "rank": 1},
            {
                "system": "phone",
                "value": f"+1-{rng.randint(200, 989)}-555-{rng.randint(0, 9999):04d}",
                "use": "mobile",
                "rank": 2,
            },
            {
                "system": "email",
                "value": f"{given[0].lower()}.{family.lower()}{i}@example.org",
                "use": "home",
            },
        ],
        "gender": "female" if female else "male",
        "birthDate": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "address": [
            {
                "use": "home",
                "type": "both",
                "line": [
                    f"{rng.randint(1, 9999)} {rng.choice(_STREETS)} Street",
                    f"Apt {rng.randint(1, 400)}",
                ],
                "city": city,
                "state": state,
                "postalCode": f"{zip3}{rng.randint(0, 99):02d}",
                "country": "US",
                "period": {"start": f"{rng.randint(year, 2024)}-01-01"},
            }
        ],
        "maritalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                    "code": marital[0],
                    "display": marital[1],
                }
            ]
        },
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": lang[0], "display": lang[1]}]},
                "preferred": True,
            }
        ],
        "contact": [
            {
                "relationship": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v2-0131",
                                "code": "N",
                                "display": "Next-of-Kin",
                            }
                        ]
                    }
                ],
                "name": {"family": family, "given": [rng.choice(_GIVEN_F + _GIVEN_M)]},
                "telecom": [{"system": "phone", "value": phone, "use": "home"}],
            }
        ],
    }


def create_template(run: str) -> str:
    """A POST body with a new MRN per request: ``{seq}`` is unique within one load
    generator run only, so ``run`` names the run (the same MRN again would be a second
    registration of one number, not the new patient each request stands for). Every
    created Patient shares its second identifier, as resources share a reference to
    their organization: one lookup key that many writers append to."""
    body = patient(424242)
    body["identifier"][0]["value"] = f"BENCH-{run}-{{seq}}"
    return dumps(body)


def update_template() -> str:
    """A PUT body for ``{id}``; ``{seq}`` changes the address on every request, so every PUT
    is a real change that writes a new version."""
    body = {
        "resourceType": "Patient",
        "id": "{id}",
        **{k: v for k, v in patient(4242).items() if k != "resourceType"},
    }
    body["address"][0]["line"][1] = "Apt {seq}"
    return dumps(body)


def dumps(resource: dict[str, Any]) -> str:
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False)
