"""A seeded synthetic population for the analytics tests: patients, conditions, HbA1c
observations and metformin prescriptions, with the awkward cases on purpose (missing
and partial birth dates, partial onset dates, several codings, other units, deleted and
entered-in-error resources)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
DIABETES = (SNOMED, "44054006")
DIABETES_ICD = (ICD10, "E11.9")
ASTHMA = (SNOMED, "195967001")
HBA1C = "4548-4"
METFORMIN = "6809"


@dataclass
class Population:
    resources: list[dict[str, Any]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)  # "Type/id" deleted after loading

    def of(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["resourceType"] == resource_type]

    def current(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.of(resource_type) if f"{resource_type}/{r['id']}" not in self.deleted]


def _day(rng: random.Random, start: date, days: int) -> date:
    return start + timedelta(days=rng.randrange(days))


def _partial(rng: random.Random, day: date) -> str:
    kind = rng.random()
    if kind < 0.1:
        return f"{day.year:04d}"
    if kind < 0.25:
        return f"{day.year:04d}-{day.month:02d}"
    if kind < 0.4:
        return f"{day.isoformat()}T{rng.randrange(24):02d}:15:00Z"
    return day.isoformat()


def generate(seed: int = 7, patients: int = 40) -> Population:
    rng = random.Random(seed)
    pop = Population()
    for i in range(patients):
        body: dict[str, Any] = {"resourceType": "Patient", "id": f"p{i}"}
        gender = rng.choice(["male", "female", "female", "other", None])
        if gender:
            body["gender"] = gender
        birth = _day(rng, date(1930, 1, 1), 365 * 85)
        style = rng.random()
        if style < 0.15:
            pass  # no birth date
        elif style < 0.3:
            body["birthDate"] = f"{birth.year:04d}"
        elif style < 0.4:
            body["birthDate"] = f"{birth.year:04d}-{birth.month:02d}"
        else:
            body["birthDate"] = birth.isoformat()
        pop.resources.append(body)
        for j in range(rng.randrange(0, 4)):
            coding = []
            which = rng.random()
            if which < 0.6:
                coding.append({"system": DIABETES[0], "code": DIABETES[1]})
            if which > 0.4:
                coding.append({"system": DIABETES_ICD[0], "code": DIABETES_ICD[1]})
            if rng.random() < 0.2:
                coding = [{"system": ASTHMA[0], "code": ASTHMA[1]}]
            condition: dict[str, Any] = {
                "resourceType": "Condition",
                "id": f"c{i}-{j}",
                "subject": {"reference": f"Patient/p{i}"},
                "code": {"coding": coding},
            }
            onset = _day(rng, date(2019, 6, 1), 900)
            if rng.random() < 0.15:
                condition["recordedDate"] = onset.isoformat()
            else:
                condition["onsetDateTime"] = _partial(rng, onset)
            if rng.random() < 0.08:
                condition["verificationStatus"] = {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": "entered-in-error",
                        }
                    ]
                }
            pop.resources.append(condition)
            if rng.random() < 0.05:
                pop.deleted.add(f"Condition/{condition['id']}")
        start = _day(rng, date(2020, 1, 1), 700) if rng.random() < 0.5 else None
        if start:
            pop.resources.append(
                {
                    "resourceType": "MedicationRequest",
                    "id": f"m{i}",
                    "status": "active",
                    "intent": "order",
                    "subject": {"reference": f"Patient/p{i}"},
                    "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": METFORMIN}]},
                    "authoredOn": start.isoformat(),
                }
            )
        level = rng.uniform(6.0, 10.0)
        for k in range(rng.randrange(0, 8)):
            when = _day(rng, date(2019, 6, 1), 1000)
            if start and when > start:
                level_now = level - rng.uniform(0, 1.5)
            else:
                level_now = level + rng.uniform(-0.5, 0.5)
            obs: dict[str, Any] = {
                "resourceType": "Observation",
                "id": f"o{i}-{k}",
                "status": "final",
                "code": {
                    "coding": [
                        {"system": LOINC, "code": HBA1C},
                        {"system": "http://acme.example/lab", "code": "A1C"},
                    ]
                },
                "subject": {"reference": f"Patient/p{i}"},
                "effectiveDateTime": _partial(rng, when) if rng.random() < 0.9 else when.isoformat(),
            }
            value = round(level_now, 1)
            if rng.random() < 0.07:
                mmol = round(value * 10.93 - 23.5, 0)
                obs["valueQuantity"] = {"value": mmol, "unit": "mmol/mol", "code": "mmol/mol"}
            else:
                obs["valueQuantity"] = {"value": value, "unit": "%", "system": "http://unitsofmeasure.org",
                                        "code": "%"}  # fmt: skip
            style = rng.random()
            if style < 0.6:
                obs["referenceRange"] = [{"low": {"value": 4.0}, "high": {"value": 5.6}}]
            elif style < 0.8:
                flag = "H" if value > 6.4 else "N"
                obs["interpretation"] = [
                    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                 "code": flag}]}
                ]  # fmt: skip
            if rng.random() < 0.05:
                obs["status"] = "entered-in-error"
            pop.resources.append(obs)
            if rng.random() < 0.05:
                pop.deleted.add(f"Observation/{obs['id']}")
        if rng.random() < 0.05:
            pop.deleted.add(f"Patient/p{i}")
    return pop


def transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }
