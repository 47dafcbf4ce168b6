"""encounter-discharge: results in the diabetes or CKD range that are not yet on the problem
list, so that they are addressed (or handed over) before the patient leaves."""

from __future__ import annotations

from datetime import date

from decision_support import features as fx
from decision_support.cards import Card
from decision_support.hooks import CdsRequest
from decision_support.prefetch import Prefetched
from decision_support.registry import Service
from decision_support.services import common, diabetes_diagnosis, renal, treatment

ID = "discharge-review"
PREFETCH = {
    "patient": common.PATIENT,
    "encounter": "Encounter/{{context.encounterId}}",
    "glycemia": common.observations(fx.HBA1C, fx.FASTING_GLUCOSE, fx.OGTT_2H_GLUCOSE),
    "renal": renal.PREFETCH,
    "conditions": common.CONDITIONS,
}


def handle(request: CdsRequest, data: Prefetched, today: date) -> list[Card]:
    conditions = data.resources("conditions")
    results = diabetes_diagnosis.glycaemic_results(data)
    egfrs = renal.series(data.resource("patient"), data.resources("renal"))
    cards = [
        *diabetes_diagnosis.cards_for(request.patient_id, results, conditions),
        *treatment.ckd_cards(request.patient_id, egfrs, conditions),
    ]
    for card in cards:
        card.card_type = f"discharge-{card.card_type}"
    return cards


def service() -> Service:
    return Service(
        ID,
        "encounter-discharge",
        "Discharge review: unaddressed diabetes and kidney results",
        "Before discharge, lists diabetes-range glucose/HbA1c "
        "and persistent low eGFR not on the problem list",
        PREFETCH,
        handle,
    )
