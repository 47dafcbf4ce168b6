"""FHIR resources -> the values rules and models use, by LOINC/SNOMED/RxNorm code (pure).

Each value keeps its date and the resource it came from, so that a card can show exactly
which inputs it used. Units are converted to the one a rule is written in; a value in a
unit we do not know is ignored rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"

HBA1C = "4548-4"
FASTING_GLUCOSE = "1558-6"
OGTT_2H_GLUCOSE = "1518-0"
CREATININE = "2160-0"
EGFR_CODES = ("98979-8", "62238-1", "33914-3")
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
BP_PANEL = "85354-9"
BMI = "39156-5"
PREGNANCIES = "11996-6"
CHOLESTEROL = "2093-3"
HDL = "2085-9"
LDL = "18262-6"
SMOKING_STATUS = "72166-2"

# Units accepted per code, with the factor to the rule's unit.
_UNITS: dict[str, dict[str, float]] = {
    HBA1C: {"%": 1.0},
    FASTING_GLUCOSE: {"mg/dL": 1.0, "mmol/L": 18.016},
    OGTT_2H_GLUCOSE: {"mg/dL": 1.0, "mmol/L": 18.016},
    CREATININE: {"mg/dL": 1.0, "umol/L": 1 / 88.42, "µmol/L": 1 / 88.42},
    SYSTOLIC: {"mm[Hg]": 1.0, "mmHg": 1.0},
    DIASTOLIC: {"mm[Hg]": 1.0, "mmHg": 1.0},
    BMI: {"kg/m2": 1.0, "kg/m^2": 1.0},
    PREGNANCIES: {"{#}": 1.0, "1": 1.0, "": 1.0},
    CHOLESTEROL: {"mg/dL": 1.0, "mmol/L": 38.67},
    HDL: {"mg/dL": 1.0, "mmol/L": 38.67},
    LDL: {"mg/dL": 1.0, "mmol/L": 38.67},
    **{code: {"mL/min/{1.73_m2}": 1.0, "mL/min/1.73m2": 1.0} for code in EGFR_CODES},
}
_FINAL = {"final", "amended", "corrected"}


@dataclass(frozen=True)
class Measurement:
    code: str
    value: float
    unit: str
    when: str  # the observation's effective date (YYYY-MM-DD...)
    reference: str

    @property
    def day(self) -> date:
        return date.fromisoformat(self.when[:10])


def codes_of(concept: Any) -> set[tuple[str, str]]:
    if not isinstance(concept, dict):
        return set()
    return {
        (str(c.get("system", "")), str(c.get("code", "")))
        for c in concept.get("coding") or []
        if isinstance(c, dict)
    }


def _effective(resource: dict[str, Any]) -> str | None:
    when = resource.get("effectiveDateTime") or (resource.get("effectivePeriod") or {}).get("start")
    when = when or resource.get("issued")
    return when if isinstance(when, str) and len(when) >= 10 else None


def _quantity(code: str, quantity: Any, when: str, reference: str) -> Measurement | None:
    if not isinstance(quantity, dict) or not isinstance(quantity.get("value"), int | float):
        return None
    unit = str(quantity.get("code") or quantity.get("unit") or "")
    factor = _UNITS.get(code, {}).get(unit)
    if factor is None:
        return None
    shown = next(iter(_UNITS[code]))
    return Measurement(code, float(quantity["value"]) * factor, shown, when, reference)


def measurements(observations: list[dict[str, Any]], code: str) -> list[Measurement]:
    """Final results for one LOINC code (also from components, e.g. a BP panel), newest first."""
    found: list[Measurement] = []
    for obs in observations:
        if obs.get("resourceType") != "Observation" or obs.get("status") not in _FINAL:
            continue
        when = _effective(obs)
        if when is None:
            continue
        reference = f"Observation/{obs.get('id')}"
        if (LOINC, code) in codes_of(obs.get("code")):
            m = _quantity(code, obs.get("valueQuantity"), when, reference)
            if m:
                found.append(m)
        for component in obs.get("component") or []:
            if (LOINC, code) in codes_of(component.get("code")):
                m = _quantity(code, component.get("valueQuantity"), when, reference)
                if m:
                    found.append(m)
    found.sort(key=lambda m: m.when, reverse=True)
    return found


def latest(observations: list[dict[str, Any]], code: str) -> Measurement | None:
    found = measurements(observations, code)
    return found[0] if found else None


def age_on(patient: dict[str, Any] | None, day: date) -> int | None:
    birth = (patient or {}).get("birthDate")
    if not isinstance(birth, str) or len(birth) < 10:
        return None
    born = date.fromisoformat(birth[:10])
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def sex(patient: dict[str, Any] | None) -> str | None:
    gender = (patient or {}).get("gender")
    return gender if gender in ("male", "female") else None


def _active(resource: dict[str, Any]) -> bool:
    status = codes_of(resource.get("clinicalStatus"))
    return not status or any(code in ("active", "recurrence", "relapse") for _, code in status)


def conditions(
    resources: list[dict[str, Any]], snomed: set[str], icd10_prefixes: tuple[str, ...]
) -> list[str]:
    """References of active Conditions coded with one of the SNOMED codes or ICD-10 prefixes."""
    found = []
    for resource in resources:
        if resource.get("resourceType") != "Condition" or not _active(resource):
            continue
        for system, code in codes_of(resource.get("code")):
            if (system == SNOMED and code in snomed) or (system == ICD10 and code.startswith(icd10_prefixes)):
                found.append(f"Condition/{resource.get('id')}")
                break
    return found


def medication_names(resource: dict[str, Any]) -> str:
    """The searchable text of a MedicationRequest's medication: codings' displays and text."""
    concept = resource.get("medicationCodeableConcept") or {}
    words = [str(concept.get("text", ""))]
    words += [str(c.get("display", "")) for c in concept.get("coding") or [] if isinstance(c, dict)]
    return " ".join(words).lower()


def active_medications(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r
        for r in resources
        if r.get("resourceType") == "MedicationRequest" and r.get("status") in ("active", "draft", "on-hold")
    ]


@dataclass(frozen=True)
class ModelInput:
    """One model feature's value, and the observation (or patient) it came from."""

    name: str
    value: float
    shown: str
    when: str | None
    reference: str | None


def _latest_coded(observations: list[dict[str, Any]], system: str, code: str) -> dict[str, Any] | None:
    found = [
        o
        for o in observations
        if o.get("resourceType") == "Observation"
        and o.get("status") in _FINAL
        and _effective(o)
        and (system, code) in codes_of(o.get("code"))
    ]
    return max(found, key=lambda o: str(_effective(o))) if found else None


def model_input(
    feature: dict[str, Any], patient: dict[str, Any] | None, observations: list[dict[str, Any]], today: date
) -> ModelInput | None:
    """A model feature from the record, by the artifact's description of it; None when missing."""
    name, kind = feature["name"], feature.get("kind", "quantity")
    pid = f"Patient/{(patient or {}).get('id')}"
    if kind == "age":
        age = age_on(patient, today)
        return None if age is None else ModelInput(name, float(age), f"{age} years", today.isoformat(), pid)
    if kind == "male":
        gender = sex(patient)
        return None if gender is None else ModelInput(name, float(gender == "male"), gender, None, pid)
    if feature["code"] in _UNITS:  # a laboratory or vital sign with known units
        m = latest(observations, feature["code"])
        return (
            None
            if m is None
            else ModelInput(name, m.value, f"{m.value:g} {m.unit}", m.when[:10], m.reference)
        )
    obs = _latest_coded(observations, feature["system"], feature["code"])
    if obs is None:
        return None
    when, reference = str(_effective(obs))[:10], f"Observation/{obs.get('id')}"
    if kind == "concept":
        values = {c for _, c in codes_of(obs.get("valueCodeableConcept"))}
        if not values:
            return None
        return ModelInput(
            name, float(feature["value_code"] in values), ", ".join(sorted(values)), when, reference
        )
    if kind == "boolean":
        flag = obs.get("valueBoolean")
        return (
            None
            if not isinstance(flag, bool)
            else ModelInput(name, float(flag), str(flag).lower(), when, reference)
        )
    quantity = obs.get("valueQuantity") or {}
    if not isinstance(quantity.get("value"), int | float):
        return None
    return ModelInput(
        name, float(quantity["value"]), f"{quantity['value']:g} {feature['unit']}", when, reference
    )
