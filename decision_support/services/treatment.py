"""patient-view: chronic kidney disease from repeated eGFR (KDIGO), and metformin for type 2
diabetes within its renal limits (eGFR by CKD-EPI 2021; FDA 2016 labelling)."""

from __future__ import annotations

from datetime import date
from typing import Any

from decision_support import features as fx
from decision_support.cards import COMMON_OVERRIDES, Card, Evidence, Source
from decision_support.hooks import CdsRequest
from decision_support.prefetch import Prefetched
from decision_support.registry import Service
from decision_support.rules import ckd_epi_2021 as ckd
from decision_support.rules import metformin_renal
from decision_support.services import common, renal

ID = "diabetes-kidney-treatment"
PREFETCH = {
    "patient": common.PATIENT,
    "renal": renal.PREFETCH,
    "conditions": common.CONDITIONS,
    "medications": common.MEDICATIONS,
}
CKD = ({"709044004", "433144002", "431855005", "431856006", "433146000", "46177005"}, ("N18",))
TYPE2_DIABETES = ({"44054006"}, ("E11",))
CKD_MIN_DAYS = 90
EGFR_RECENT_DAYS = 365
CKD_SOURCE = Source("KDIGO 2024 CKD guideline; CKD-EPI 2021", ckd.KDIGO_URL, "ckd-staging", "CKD staging")
METFORMIN_SOURCE = Source(
    "FDA metformin labelling (2016); ADA 2024", metformin_renal.URL, "metformin", "Metformin"
)


def ckd_cards(patient_id: str, egfrs: list[renal.Egfr], conditions: list[dict[str, Any]]) -> list[Card]:
    low = [e for e in egfrs if e.value < 60]
    if not low or fx.conditions(conditions, *CKD):
        return []
    newest, oldest = low[0], low[-1]
    if (newest.day - oldest.day).days < CKD_MIN_DAYS or egfrs[0].value >= 60:
        return []  # not yet persistent for 3 months, or the latest value is back above 60
    stage = ckd.category(newest.value)
    evidence = [*renal.evidence(newest), *renal.evidence(oldest)]
    return [
        Card(
            "ckd-kdigo",
            f"eGFR < 60 for {(newest.day - oldest.day).days} "
            f"days (latest {newest.value:.0f}, KDIGO {stage}): "
            "consider recording CKD",
            "warning" if stage in ("G4", "G5") else "info",
            CKD_SOURCE,
            evidence,
            "KDIGO 2024: CKD is a GFR < 60 mL/min/1.73 m2 persisting "
            "> 3 months. eGFR by the race-free CKD-EPI 2021 "
            "creatinine equation; categories G1 >= 90, G2 60-89, G3a 45-59, G3b 30-44, G4 15-29, G5 < 15.",
            [
                common.diagnose(
                    patient_id, "709044004", "Chronic kidney disease", [newest.reference, oldest.reference]
                )
            ],
            override_reasons=COMMON_OVERRIDES,
            links=[("KDIGO 2024 CKD guideline", ckd.KDIGO_URL), ("CKD-EPI 2021 (Inker et al.)", ckd.URL)],
            outputs={"stage": stage, "egfr": round(newest.value, 1)},
        )
    ]


def metformin_cards(
    patient_id: str,
    egfrs: list[renal.Egfr],
    conditions: list[dict[str, Any]],
    medications: list[dict[str, Any]],
    today: date,
) -> list[Card]:
    diabetes = fx.conditions(conditions, *TYPE2_DIABETES)
    if not diabetes:
        return []
    if any("metformin" in fx.medication_names(m) for m in fx.active_medications(medications)):
        return []
    recent = [e for e in egfrs if (today - e.day).days <= EGFR_RECENT_DAYS]
    facts = [
        Evidence("Type 2 diabetes", "active", reference=diabetes[0]),
        Evidence("Metformin", "not prescribed"),
    ]
    if not recent:
        return [
            Card(
                "metformin-needs-egfr",
                "Type 2 diabetes without metformin: no eGFR in 12 months to check its renal limits",
                "info",
                METFORMIN_SOURCE,
                [*facts, Evidence("eGFR", "missing in the last 12 months")],
                "Metformin is first-line for type 2 diabetes (ADA "
                "2024) but its dose depends on eGFR (FDA 2016: "
                "contraindicated < 30, not started at 30-44). A creatinine is needed first.",
                [
                    common.order_test(
                        patient_id, fx.CREATININE, "Creatinine [Mass/volume] in Serum or Plasma", "eGFR"
                    )
                ],
                override_reasons=COMMON_OVERRIDES,
                links=[("FDA Drug Safety Communication (2016)", metformin_renal.URL)],
                outputs={"missing": ["eGFR"]},
            )
        ]
    egfr = recent[0]
    verdict = metformin_renal.check(egfr.value)
    if verdict != "ok":
        return []  # metformin should not be started; the order-sign check warns if it is
    return [
        Card(
            "metformin-start",
            "Type 2 diabetes without metformin; eGFR "
            f"{egfr.value:.0f} allows it: consider starting metformin",
            "info",
            METFORMIN_SOURCE,
            [*facts, *renal.evidence(egfr)],
            "ADA 2024: metformin is first-line therapy for type 2 diabetes. FDA 2016 labelling: no renal "
            "restriction at eGFR >= 45; not started at 30-44; "
            "contraindicated < 30. Recheck eGFR at least yearly.",
            [
                common.prescribe(
                    patient_id,
                    "861007",
                    "metformin hydrochloride 500 MG Oral Tablet",
                    "500 mg once daily with a meal, titrate",
                    "Type 2 diabetes",
                )
            ],
            override_reasons=[("gi-intolerance", "Gastrointestinal intolerance"), *COMMON_OVERRIDES],
            links=[("FDA Drug Safety Communication (2016)", metformin_renal.URL)],
            outputs={"egfr": round(egfr.value, 1), "verdict": verdict},
        )
    ]


def handle(request: CdsRequest, data: Prefetched, today: date) -> list[Card]:
    egfrs = renal.series(data.resource("patient"), data.resources("renal"))
    conditions, medications = data.resources("conditions"), data.resources("medications")
    return [
        *ckd_cards(request.patient_id, egfrs, conditions),
        *metformin_cards(request.patient_id, egfrs, conditions, medications, today),
    ]


def service() -> Service:
    return Service(
        ID,
        "patient-view",
        "Kidney function and metformin",
        "Flags CKD from eGFR < 60 for over 3 months (KDIGO, CKD-EPI 2021) and suggests metformin for type 2 "
        "diabetes when eGFR allows it",
        PREFETCH,
        handle,
    )
