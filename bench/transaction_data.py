"""Realistic patient transaction Bundles, like the ones EHR exports and Synthea produce.

One Bundle is one patient's record: the patient, a shared organization and practitioner
(conditional creates by identifier, as every loader does), and a history of encounters,
each with vital signs, laboratory results, a report grouping them, and now and then a
condition, a procedure, a prescription and an immunization. All references between
entries are ``urn:uuid:`` fullUrls. Deterministic for a given seed.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
VITALS = [
    ("8867-4", "Heart rate", "/min", 55, 110),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 100, 170),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 55, 100),
    ("8310-5", "Body temperature", "Cel", 36.0, 39.5),
    ("9279-1", "Respiratory rate", "/min", 10, 26),
    ("29463-7", "Body weight", "kg", 45, 120),
]
LABS = [
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 60, 250),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 11),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.5, 2.5),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 9, 17),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 3, 15),
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 130, 150),
]
CONDITIONS = [
    ("44054006", "Diabetes mellitus type 2"),
    ("38341003", "Hypertensive disorder"),
    ("195662009", "Acute viral pharyngitis"),
    ("10509002", "Acute bronchitis"),
]
FAMILY = ["Smith", "Garcia", "Nguyen", "Okafor", "Müller", "Rossi", "Kowalski", "Tanaka", "Haddad", "Silva"]
GIVEN = ["Maria", "James", "Aisha", "Wei", "Olga", "Juan", "Fatima", "Lars", "Priya", "Kofi"]


def _urn(rng: random.Random) -> str:
    return f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def _post(full_url: str, resource: dict[str, Any], **request: str) -> dict[str, Any]:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": round(value, 1), "unit": unit, "system": UCUM, "code": unit}


def patient_bundle(seed: int, entries: int = 300) -> dict[str, Any]:
    """One patient's record as a transaction Bundle of about ``entries`` entries."""
    rng = random.Random(seed)
    patient_url, org_url, gp_url = _urn(rng), _urn(rng), _urn(rng)
    org_id = f"org-{seed % 20}"
    gp_id = f"gp-{seed % 50}"
    born = datetime(1940, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 25000))
    bundle_entries = [
        _post(
            org_url,
            {
                "resourceType": "Organization",
                "identifier": [{"system": "urn:oid:2.16.840.1.113883.4.7", "value": org_id}],
                "name": f"General Hospital {org_id}",
            },
            ifNoneExist=f"identifier=urn:oid:2.16.840.1.113883.4.7|{org_id}",
        ),
        _post(
            gp_url,
            {
                "resourceType": "Practitioner",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": gp_id}],
                "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)], "prefix": ["Dr."]}],
            },
            ifNoneExist=f"identifier=http://hl7.org/fhir/sid/us-npi|{gp_id}",
        ),
        _post(
            patient_url,
            {
                "resourceType": "Patient",
                "identifier": [
                    {
                        "type": {
                            "coding": [
                                {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                            ]
                        },
                        "system": "urn:oid:1.2.36.146.595.217.0.1",
                        "value": f"MRN{seed:08d}",
                    }
                ],
                "name": [
                    {
                        "use": "official",
                        "family": rng.choice(FAMILY),
                        "given": [rng.choice(GIVEN), rng.choice(GIVEN)],
                    }
                ],
                "telecom": [{"system": "phone", "value": f"555-{rng.randrange(1000, 9999)}", "use": "home"}],
                "gender": rng.choice(["male", "female"]),
                "birthDate": born.date().isoformat(),
                "address": [
                    {
                        "line": [f"{rng.randrange(1, 999)} Main St"],
                        "city": "Springfield",
                        "postalCode": "01101",
                        "country": "US",
                    }
                ],
                "generalPractitioner": [{"reference": gp_url}],
                "managingOrganization": {"reference": org_url},
            },
        ),
    ]
    when = datetime(2015, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(0, 300))
    while len(bundle_entries) < entries:
        when += timedelta(days=rng.randrange(20, 120), hours=rng.randrange(0, 10))
        encounter_url = _urn(rng)
        bundle_entries.append(
            _post(
                encounter_url,
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "type": [
                        {
                            "coding": [
                                {"system": SNOMED, "code": "185349003", "display": "Encounter for check up"}
                            ]
                        }
                    ],
                    "subject": {"reference": patient_url},
                    "participant": [{"individual": {"reference": gp_url}}],
                    "period": {"start": _instant(when), "end": _instant(when + timedelta(minutes=30))},
                    "serviceProvider": {"reference": org_url},
                },
            )
        )
        results = []
        for code, display, unit, low, high in VITALS + rng.sample(LABS, 3):
            obs_url = _urn(rng)
            results.append(obs_url)
            category = "vital-signs" if (code, display, unit, low, high) in VITALS else "laboratory"
            bundle_entries.append(
                _post(
                    obs_url,
                    {
                        "resourceType": "Observation",
                        "status": "final",
                        "category": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                        "code": category,
                                    }
                                ]
                            }
                        ],
                        "code": {
                            "coding": [{"system": LOINC, "code": code, "display": display}],
                            "text": display,
                        },
                        "subject": {"reference": patient_url},
                        "encounter": {"reference": encounter_url},
                        "effectiveDateTime": _instant(when),
                        "issued": _instant(when + timedelta(hours=2)),
                        "valueQuantity": _quantity(rng.uniform(low, high), unit),
                    },
                )
            )
        bundle_entries.append(
            _post(
                _urn(rng),
                {
                    "resourceType": "DiagnosticReport",
                    "status": "final",
                    "code": {
                        "coding": [
                            {"system": LOINC, "code": "24323-8", "display": "Comprehensive metabolic panel"}
                        ]
                    },
                    "subject": {"reference": patient_url},
                    "encounter": {"reference": encounter_url},
                    "effectiveDateTime": _instant(when),
                    "issued": _instant(when + timedelta(hours=2)),
                    "result": [{"reference": r} for r in results[-3:]],
                },
            )
        )
        if rng.random() < 0.3:
            code, display = rng.choice(CONDITIONS)
            bundle_entries.append(
                _post(
                    _urn(rng),
                    {
                        "resourceType": "Condition",
                        "clinicalStatus": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "code": "active",
                                }
                            ]
                        },
                        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
                        "subject": {"reference": patient_url},
                        "encounter": {"reference": encounter_url},
                        "onsetDateTime": _instant(when),
                    },
                )
            )
            bundle_entries.append(
                _post(
                    _urn(rng),
                    {
                        "resourceType": "MedicationRequest",
                        "status": "active",
                        "intent": "order",
                        "medicationCodeableConcept": {
                            "coding": [
                                {
                                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                    "code": "860975",
                                    "display": "metformin 500 MG",
                                }
                            ]
                        },
                        "subject": {"reference": patient_url},
                        "encounter": {"reference": encounter_url},
                        "authoredOn": _instant(when),
                        "requester": {"reference": gp_url},
                    },
                )
            )
        if rng.random() < 0.2:
            bundle_entries.append(
                _post(
                    _urn(rng),
                    {
                        "resourceType": "Immunization",
                        "status": "completed",
                        "vaccineCode": {
                            "coding": [
                                {
                                    "system": "http://hl7.org/fhir/sid/cvx",
                                    "code": "140",
                                    "display": "Influenza, seasonal",
                                }
                            ]
                        },
                        "patient": {"reference": patient_url},
                        "encounter": {"reference": encounter_url},
                        "occurrenceDateTime": _instant(when),
                    },
                )
            )
    return {"resourceType": "Bundle", "type": "transaction", "entry": bundle_entries}
