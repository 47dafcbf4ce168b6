"""What several services share: prefetch templates, evidence lines, and suggested resources."""

from __future__ import annotations

from typing import Any

from decision_support.cards import Action, Evidence, Suggestion
from decision_support.features import LOINC, RXNORM, SNOMED, Measurement

PATIENT = "Patient/{{context.patientId}}"


def observations(*codes: str) -> str:
    wanted = ",".join(f"{LOINC}|{c}" for c in codes)
    return f"Observation?subject=Patient/{{{{context.patientId}}}}&code={wanted}&_sort=-date&_count=200"


CONDITIONS = "Condition?subject=Patient/{{context.patientId}}&_count=200"
MEDICATIONS = "MedicationRequest?subject=Patient/{{context.patientId}}&status=active&_count=200"
ALLERGIES = "AllergyIntolerance?patient=Patient/{{context.patientId}}&_count=200"

LABELS = {
    "4548-4": "HbA1c",
    "1558-6": "Fasting plasma glucose",
    "1518-0": "2-h OGTT plasma glucose",
    "2160-0": "Serum creatinine",
    "8480-6": "Systolic BP",
    "8462-4": "Diastolic BP",
    "39156-5": "BMI",
    "11996-6": "Pregnancies",
    "2093-3": "Total cholesterol",
    "2085-9": "HDL cholesterol",
    "18262-6": "LDL cholesterol",
}


def evidence(m: Measurement) -> Evidence:
    value = f"{m.value:.3g}" if abs(m.value) < 1000 else f"{m.value:.0f}"
    return Evidence(
        f"{LABELS.get(m.code, m.code)} (LOINC {m.code})", f"{value} {m.unit}", m.when[:10], m.reference
    )


def _subject(patient_id: str) -> dict[str, str]:
    return {"reference": f"Patient/{patient_id}"}


def order_test(patient_id: str, loinc: str, display: str, reason: str) -> Suggestion:
    """Suggest a ServiceRequest for a laboratory test (a draft order the clinician signs)."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "category": [
            {"coding": [{"system": SNOMED, "code": "108252007", "display": "Laboratory procedure"}]}
        ],
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display},
        "subject": _subject(patient_id),
        "reasonCode": [{"text": reason}],
    }
    return Suggestion(f"Order {display}", (Action("create", f"Order {display}", resource),), recommended=True)


def prescribe(patient_id: str, rxnorm: str, display: str, dosage: str, reason: str) -> Suggestion:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxnorm, "display": display}]},
        "subject": _subject(patient_id),
        "dosageInstruction": [{"text": dosage}],
        "reasonCode": [{"text": reason}],
    }
    return Suggestion(f"Prescribe {display}", (Action("create", f"Prescribe {display}, {dosage}", resource),))


def diagnose(patient_id: str, snomed: str, display: str, evidence_refs: list[str]) -> Suggestion:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "provisional",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": SNOMED, "code": snomed, "display": display}], "text": display},
        "subject": _subject(patient_id),
    }
    if evidence_refs:
        resource["evidence"] = [{"detail": [{"reference": r} for r in evidence_refs]}]
    return Suggestion(f"Add {display} to the problem list", (Action("create", f"Add {display}", resource),))
