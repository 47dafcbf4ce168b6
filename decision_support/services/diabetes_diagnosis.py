"""patient-view: diabetes and prediabetes from HbA1c, fasting and 2-h glucose (ADA 2024)."""

from __future__ import annotations

from datetime import date
from typing import Any

from decision_support import features as fx
from decision_support.cards import COMMON_OVERRIDES, Card, Source
from decision_support.hooks import CdsRequest
from decision_support.prefetch import Prefetched
from decision_support.registry import Service
from decision_support.rules import ada_diabetes as ada
from decision_support.services import common

ID = "diabetes-diagnosis"
SOURCE = Source(
    "ADA Standards of Care in Diabetes 2024",
    ada.URL,
    "diabetes-diagnosis",
    "Diabetes diagnosis (ADA criteria)",
)
DIABETES_SNOMED = {"44054006", "73211009", "46635009", "190330002"}
PREDIABETES_SNOMED = {"714628002", "9414007"}
PREFETCH = {
    "patient": common.PATIENT,
    "glycemia": common.observations(fx.HBA1C, fx.FASTING_GLUCOSE, fx.OGTT_2H_GLUCOSE),
    "conditions": common.CONDITIONS,
}
RULE = (
    "ADA 2024: diabetes at HbA1c >= 6.5 %, fasting glucose >= 126 mg/dL or 2-h OGTT glucose >= 200 mg/dL; "
    "prediabetes at HbA1c 5.7-6.4 %, fasting glucose 100-125 mg/dL or 2-h glucose 140-199 mg/dL. "
    "The diagnosis needs two abnormal results (two tests, or one test on two days)."
)


def glycaemic_results(data: Prefetched, key: str = "glycemia") -> list[fx.Measurement]:
    observations = data.resources(key)
    found = [m for code in ada.THRESHOLDS for m in fx.measurements(observations, code)]
    return sorted(found, key=lambda m: m.when, reverse=True)


def cards_for(patient_id: str, results: list[fx.Measurement], conditions: list[dict[str, Any]]) -> list[Card]:
    """The ADA rule on a patient's results; nothing when the problem list already has it."""
    assessment = ada.assess(results)
    if assessment is None or assessment.status == "normal":
        return []
    known = fx.conditions(conditions, DIABETES_SNOMED, ("E10", "E11", "E13"))
    if known:
        return []
    evidence = [common.evidence(m) for m in assessment.results]
    refs = [m.reference for m in assessment.results]
    outputs = {"status": assessment.status}
    if assessment.status == "diagnostic":
        return [
            Card(
                "ada-diabetes-diagnostic",
                "Two results in the diabetes range (ADA): consider adding diabetes to the problem list",
                "warning",
                SOURCE,
                evidence,
                RULE,
                [common.diagnose(patient_id, "44054006", "Type 2 diabetes mellitus", refs)],
                override_reasons=COMMON_OVERRIDES,
                links=[("ADA Standards of Care 2024, section 2", ada.URL)],
                outputs=outputs,
            )
        ]
    if assessment.status == "needs-confirmation":
        first = assessment.results[0]
        return [
            Card(
                "ada-diabetes-confirm",
                f"{common.LABELS[first.code]} in the diabetes range: repeat to confirm (ADA)",
                "warning",
                SOURCE,
                evidence,
                RULE,
                [
                    common.order_test(
                        patient_id, fx.HBA1C, "Hemoglobin A1c", "Confirm a diabetes-range result"
                    ),
                    common.order_test(
                        patient_id,
                        fx.FASTING_GLUCOSE,
                        "Fasting plasma glucose",
                        "Confirm a diabetes-range result",
                    ),
                ],
                override_reasons=COMMON_OVERRIDES,
                links=[("ADA Standards of Care 2024, section 2", ada.URL)],
                outputs=outputs,
            )
        ]
    if fx.conditions(conditions, PREDIABETES_SNOMED, ("R73.0",)):
        return []
    return [
        Card(
            "ada-prediabetes",
            "Result in the prediabetes range (ADA): consider recording prediabetes",
            "info",
            SOURCE,
            evidence,
            RULE,
            [common.diagnose(patient_id, "714628002", "Prediabetes", refs)],
            override_reasons=COMMON_OVERRIDES,
            links=[("ADA Standards of Care 2024, section 2", ada.URL)],
            outputs=outputs,
        )
    ]


def handle(request: CdsRequest, data: Prefetched, today: date) -> list[Card]:
    return cards_for(request.patient_id, glycaemic_results(data), data.resources("conditions"))


def service() -> Service:
    return Service(
        ID,
        "patient-view",
        "Diabetes diagnosis from HbA1c and glucose (ADA 2024)",
        "Flags diabetes- and prediabetes-range HbA1c and glucose results not yet on the problem list, "
        "and suggests a confirmatory test or the diagnosis",
        PREFETCH,
        handle,
    )
