"""Deterministic, Synthea-like clinical data for the search benchmark (bench/search_run.py).

Every patient ``p`` (0, 1, 2, ...) brings, in this order:

* a Patient ``pat-{p:06d}``: MRN and SSN identifiers, an official (and sometimes a maiden)
  name, gender, birthDate, address, telecom;
* 1-3 Encounters ``enc-{p:06d}-{k}`` (2 on average): class, SNOMED type, ``period``;
* 8-12 Observations ``obs-{p:06d}-{k:02d}`` (10 on average): LOINC vital signs and labs
  with a UCUM ``valueQuantity`` and an ``effectiveDateTime`` between 2015 and 2025, most
  linked to one of the patient's encounters;
* 1-3 Conditions ``cond-{p:06d}-{k}`` (2 on average): SNOMED code, ``onsetDateTime``.

That is about 15 resources per patient. A data set of ``n`` resources is the first ``n``
of that stream (:func:`resources`), so a smaller data set is a prefix of a larger one and
the 100k set can be loaded on top of the 10k set. Every id is known in advance, so
resources are written with ``PUT`` and references point at ids that exist.

The same ``p`` always gives the same resources (one ``random.Random`` per patient).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MRN_SYSTEM = "http://hospital.example.org/fhir/sid/mrn"
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
_OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

SEED = 20_151_025  # one fixed seed: the data set never changes between runs
FIRST_DAY = datetime(2015, 1, 1, tzinfo=UTC)
LAST_DAY = datetime(2025, 12, 31, 23, 59, tzinfo=UTC)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Common US surnames and given names (Census frequency order), as Synthea draws them.
FAMILY = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers "
    "Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson "
    "Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo "
    "Sanders Patel Myers Long Ross Foster Jimenez"
)
GIVEN_F = _words(
    "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty "
    "Margaret Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah "
    "Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy Angela Shirley Anna Brenda Pamela Emma "
    "Nicole Helen Samantha Katherine Christine Debra Rachel Carolyn Janet Catherine Maria Heather"
)
GIVEN_M = _words(
    "James Robert John Michael David William Richard Joseph Thomas Charles Christopher Daniel "
    "Matthew Anthony Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy "
    "Ronald Edward Jason Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott "
    "Brandon Benjamin Samuel Gregory Alexander Frank Patrick Raymond Jack Dennis Jerry"
)
STREETS = _words("Oak Maple Cedar Pine Elm Washington Lake Hill Park Main Church High Walnut Spring Ridge")
CITIES = (
    ("Springfield", "MA", "011"),
    ("Worcester", "MA", "016"),
    ("Boston", "MA", "021"),
    ("Cambridge", "MA", "021"),
    ("Lowell", "MA", "018"),
    ("Brockton", "MA", "023"),
    ("Quincy", "MA", "021"),
    ("Lynn", "MA", "019"),
    ("New Bedford", "MA", "027"),
    ("Fall River", "MA", "027"),
)


@dataclass(frozen=True)
class Measure:
    """A LOINC observation: its unit, a plausible distribution, and a clinical "high"."""

    code: str
    display: str
    category: str  # vital-signs | laboratory
    unit: str  # UCUM
    mean: float
    sd: float
    digits: int
    weight: int  # relative frequency
    high: float | None = None  # the threshold of `value-quantity=gt...` queries (labs)


MEASURES = (
    Measure("8867-4", "Heart rate", "vital-signs", "/min", 76, 12, 0, 10),
    Measure("8480-6", "Systolic blood pressure", "vital-signs", "mm[Hg]", 124, 16, 0, 10),
    Measure("8462-4", "Diastolic blood pressure", "vital-signs", "mm[Hg]", 79, 10, 0, 10),
    Measure("29463-7", "Body weight", "vital-signs", "kg", 78, 18, 1, 8),
    Measure("8302-2", "Body height", "vital-signs", "cm", 169, 10, 1, 5),
    Measure("39156-5", "Body mass index (BMI) [Ratio]", "vital-signs", "kg/m2", 27.5, 5, 1, 7),
    Measure("8310-5", "Body temperature", "vital-signs", "Cel", 36.9, 0.4, 1, 6),
    Measure("9279-1", "Respiratory rate", "vital-signs", "/min", 16, 2.5, 0, 6),
    Measure("2339-0", "Glucose [Mass/volume] in Blood", "laboratory", "mg/dL", 102, 25, 0, 6, 126),
    Measure("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "laboratory", "%", 5.8, 0.9, 1, 4, 6.5),
    Measure("2823-3", "Potassium [Moles/volume] in Serum", "laboratory", "mmol/L", 4.3, 0.45, 1, 5, 5),
    Measure("2951-2", "Sodium [Moles/volume] in Serum", "laboratory", "mmol/L", 140, 3, 0, 5, 145),
    Measure("2160-0", "Creatinine [Mass/volume] in Serum", "laboratory", "mg/dL", 1.0, 0.3, 2, 5, 1.3),
    Measure("718-7", "Hemoglobin [Mass/volume] in Blood", "laboratory", "g/dL", 13.8, 1.6, 1, 4, 17.5),
    Measure("6690-2", "Leukocytes [#/volume] in Blood", "laboratory", "10*3/uL", 7.2, 2.2, 1, 4, 11),
    Measure("2093-3", "Cholesterol [Mass/volume] in Serum", "laboratory", "mg/dL", 192, 36, 0, 4, 240),
)
_MEASURE_WEIGHTS = [m.weight for m in MEASURES]

CONDITIONS = (
    ("38341003", "Hypertension"),
    ("44054006", "Diabetes mellitus type 2"),
    ("55822004", "Hyperlipidemia"),
    ("15777000", "Prediabetes"),
    ("162864005", "Body mass index 30+ - obesity"),
    ("195967001", "Asthma"),
    ("40055000", "Chronic sinusitis"),
    ("444814009", "Viral sinusitis"),
    ("10509002", "Acute bronchitis"),
    ("195662009", "Acute viral pharyngitis"),
    ("431855005", "Chronic kidney disease stage 1"),
    ("233604007", "Pneumonia"),
    ("68496003", "Polyp of colon"),
    ("239873007", "Osteoarthritis of knee"),
    ("36971009", "Sinusitis"),
)
ENCOUNTER_KINDS = (
    # class, SNOMED type, display, (shortest, longest) duration in minutes, weight
    ("AMB", "185349003", "Encounter for check up", (20, 60), 6),
    ("AMB", "390906007", "Follow-up encounter", (15, 40), 4),
    ("EMER", "50849002", "Emergency room admission", (90, 600), 2),
    ("IMP", "183452005", "Emergency hospital admission", (1440, 8640), 1),
)
_ENCOUNTER_WEIGHTS = [k[-1] for k in ENCOUNTER_KINDS]
_CLASS_DISPLAY = {"AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient encounter"}


def patient_id(p: int) -> str:
    return f"pat-{p:06d}"


def mrn(p: int) -> str:
    return f"MRN{2_000_000 + p}"


def _instant(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _random_time(rng: random.Random, start: datetime = FIRST_DAY, end: datetime = LAST_DAY) -> datetime:
    seconds = int((end - start).total_seconds())
    return (start + timedelta(seconds=rng.randrange(seconds))).replace(second=0)


def _patient(p: int, rng: random.Random) -> dict[str, Any]:
    female = rng.random() < 0.51
    names = GIVEN_F if female else GIVEN_M
    family = rng.choice(FAMILY)
    given = [rng.choice(names), rng.choice(names)]
    city, state, zip3 = rng.choice(CITIES)
    birth = datetime(1930, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(90 * 365))
    name = [{"use": "official", "family": family, "given": given, "prefix": ["Ms." if female else "Mr."]}]
    if female and rng.random() < 0.3:
        name.append({"use": "maiden", "family": rng.choice(FAMILY), "given": given[:1]})
    return {
        "resourceType": "Patient",
        "id": patient_id(p),
        "identifier": [
            {
                "use": "usual",
                "type": {"coding": [{"system": _V2_0203, "code": "MR", "display": "Medical record number"}]},
                "system": MRN_SYSTEM,
                "value": mrn(p),
            },
            {
                "use": "official",
                "type": {"coding": [{"system": _V2_0203, "code": "SS", "display": "Social Security number"}]},
                "system": SSN_SYSTEM,
                "value": f"999-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
            },
        ],
        "active": True,
        "name": name,
        "telecom": [{"system": "phone", "value": f"555-{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}"}],
        "gender": "female" if female else "male",
        "birthDate": birth.strftime("%Y-%m-%d"),
        "address": [
            {
                "use": "home",
                "line": [f"{rng.randint(1, 9999)} {rng.choice(STREETS)} Street"],
                "city": city,
                "state": state,
                "postalCode": f"{zip3}{rng.randint(0, 99):02d}",
                "country": "US",
            }
        ],
    }


def _encounter(p: int, k: int, rng: random.Random, subject: dict[str, str]) -> dict[str, Any]:
    cls, code, display, (shortest, longest), _ = rng.choices(ENCOUNTER_KINDS, _ENCOUNTER_WEIGHTS)[0]
    start = _random_time(rng, FIRST_DAY, LAST_DAY - timedelta(days=7))
    end = start + timedelta(minutes=rng.randint(shortest, longest))
    return {
        "resourceType": "Encounter",
        "id": f"enc-{p:06d}-{k}",
        "status": "finished",
        "class": {"system": _ACT_CODE, "code": cls, "display": _CLASS_DISPLAY[cls]},
        "type": [{"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display}],
        "subject": subject,
        "period": {"start": _instant(start), "end": _instant(end)},
        "serviceProvider": {"display": "General Hospital"},
    }


def _observation(
    p: int, k: int, rng: random.Random, subject: dict[str, str], encounters: list[dict[str, Any]]
) -> dict[str, Any]:
    measure = rng.choices(MEASURES, _MEASURE_WEIGHTS)[0]
    value = round(max(rng.gauss(measure.mean, measure.sd), measure.mean / 10), measure.digits)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"obs-{p:06d}-{k:02d}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": _OBS_CATEGORY,
                        "code": measure.category,
                        "display": "Vital Signs" if measure.category == "vital-signs" else "Laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": measure.code, "display": measure.display}],
            "text": measure.display,
        },
        "subject": subject,
    }
    if encounters and rng.random() < 0.7:
        encounter = rng.choice(encounters)
        start = datetime.fromisoformat(encounter["period"]["start"])
        resource["encounter"] = {"reference": f"Encounter/{encounter['id']}"}
        when = start + timedelta(minutes=rng.randint(0, 30))
    else:
        when = _random_time(rng)
    resource["effectiveDateTime"] = _instant(when)
    resource["issued"] = _instant(when + timedelta(hours=2)).replace("+00:00", ".000+00:00")
    resource["valueQuantity"] = {
        "value": int(value) if measure.digits == 0 else value,
        "unit": measure.unit,
        "system": UCUM,
        "code": measure.unit,
    }
    return resource


def _condition(
    p: int, k: int, rng: random.Random, subject: dict[str, str], encounters: list[dict[str, Any]]
) -> dict[str, Any]:
    code, display = rng.choice(CONDITIONS)
    encounter = rng.choice(encounters)
    onset = datetime.fromisoformat(encounter["period"]["start"])
    resolved = rng.random() < 0.35
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"cond-{p:06d}-{k}",
        "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "resolved" if resolved else "active"}]},
        "verificationStatus": {"coding": [{"system": _VERIFICATION, "code": "confirmed"}]},
        "category": [{"coding": [{"system": _CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "subject": subject,
        "encounter": {"reference": f"Encounter/{encounter['id']}"},
        "onsetDateTime": _instant(onset),
        "recordedDate": _instant(onset),
    }
    if resolved:
        resource["abatementDateTime"] = _instant(onset + timedelta(days=rng.randint(7, 120)))
    return resource


def patient_record(p: int) -> list[dict[str, Any]]:
    """Patient ``p`` and everything recorded about them, the Patient first."""
    rng = random.Random(SEED * 1_000_003 + p)
    patient = _patient(p, rng)
    official = patient["name"][0]
    subject = {
        "reference": f"Patient/{patient['id']}",
        "display": f"{official['given'][0]} {official['family']}",
    }
    encounters = [_encounter(p, k, rng, subject) for k in range(rng.choice((1, 2, 2, 3)))]
    observations = [_observation(p, k, rng, subject, encounters) for k in range(rng.randint(8, 12))]
    conditions = [_condition(p, k, rng, subject, encounters) for k in range(rng.choice((1, 2, 2, 3)))]
    return [patient, *encounters, *observations, *conditions]


def resources(count: int, start: int = 0) -> Iterator[dict[str, Any]]:
    """Resources ``start`` .. ``count - 1`` of the stream (patient by patient)."""
    position = 0
    p = 0
    while position < count:
        record = patient_record(p)
        for resource in record:
            if start <= position < count:
                yield resource
            position += 1
            if position >= count:
                return
        p += 1


def complete_patients(count: int) -> int:
    """How many patients have every one of their resources within the first ``count``."""
    position, p = 0, 0
    while True:
        size = len(patient_record(p))
        if position + size > count:
            return p
        position += size
        p += 1
