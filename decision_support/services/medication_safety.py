"""order-select / order-sign: drug-drug interactions, renal limits and allergy conflicts for
the medications being ordered. order-select checks the selected orders, order-sign all drafts."""

from __future__ import annotations

from datetime import date
from typing import Any

from decision_support import features as fx
from decision_support.cards import Action, Card, Evidence, Source, Suggestion
from decision_support.hooks import CdsRequest
from decision_support.prefetch import Prefetched
from decision_support.registry import Service
from decision_support.rules import allergies, interactions, metformin_renal
from decision_support.services import common, renal

PREFETCH = {
    "patient": common.PATIENT,
    "medications": common.MEDICATIONS,
    "allergies": common.ALLERGIES,
    "renal": renal.PREFETCH,
}
EGFR_RECENT_DAYS = 365
DDI_SOURCE = Source(
    "ONC high-priority drug-drug interactions", interactions.URL, "ddi", "Drug-drug interaction"
)
RENAL_SOURCE = Source("FDA metformin labelling (2016)", metformin_renal.URL, "renal-dose", "Renal dosing")
ALLERGY_SOURCE = Source("Allergy record (AllergyIntolerance)", None, "allergy", "Allergy conflict")
OVERRIDES = [
    ("benefit-outweighs-risk", "Benefit outweighs risk"),
    ("monitoring-in-place", "Will monitor the patient"),
    ("already-tolerated", "Patient has tolerated this before"),
    ("not-clinically-appropriate", "Alert not clinically appropriate"),
]


def _drafts(request: CdsRequest) -> list[dict[str, Any]]:
    entries = request.context["draftOrders"].get("entry") or []
    found = [e.get("resource") for e in entries if isinstance(e, dict)]
    orders = [o for o in found if isinstance(o, dict) and o.get("resourceType") == "MedicationRequest"]
    if request.hook == "order-select":
        selected = set(request.context["selections"])
        orders = [o for o in orders if f"MedicationRequest/{o.get('id')}" in selected]
    return orders


def _remove(order: dict[str, Any], name: str) -> list[Suggestion]:
    if not order.get("id"):
        return []
    reference = f"MedicationRequest/{order['id']}"
    return [
        Suggestion(
            f"Remove the {name} order", (Action("delete", f"Remove {reference}", resource_id=(reference,)),)
        )
    ]


def _name(order: dict[str, Any]) -> str:
    concept = order.get("medicationCodeableConcept") or {}
    codings = concept.get("coding") or [{}]
    return str(concept.get("text") or codings[0].get("display") or "this medication")


def interaction_cards(orders: list[dict[str, Any]], others: list[dict[str, Any]]) -> list[Card]:
    cards = []
    for order in orders:
        text = fx.medication_names(order)
        for other in others:
            if other is order or (other.get("id") and other.get("id") == order.get("id")):
                continue
            for row, a, b in interactions.find(text, fx.medication_names(other)):
                cards.append(
                    Card(
                        "ddi",
                        f"Interaction: {a} with {b} ({row.effect.split(':')[0].lower()})"[:139],
                        row.severity,
                        DDI_SOURCE,
                        [
                            Evidence(
                                "Ordered", _name(order), reference=f"MedicationRequest/{order.get('id')}"
                            ),
                            Evidence(
                                "With",
                                _name(other),
                                other.get("authoredOn"),
                                f"MedicationRequest/{other.get('id')}",
                            ),
                        ],
                        f"{row.effect}. Source: {row.source}. Ingredients are matched by name in the order's "
                        "coding display and text.",
                        _remove(order, a),
                        override_reasons=OVERRIDES,
                        links=[("ONC high-priority DDI list (Phansalkar 2012)", interactions.URL)],
                        outputs={"pair": [a, b], "severity": row.severity},
                    )
                )
    return cards


def renal_cards(orders: list[dict[str, Any]], egfrs: list[renal.Egfr], today: date) -> list[Card]:
    cards = []
    recent = [e for e in egfrs if (today - e.day).days <= EGFR_RECENT_DAYS]
    for order in orders:
        if "metformin" not in fx.medication_names(order):
            continue
        if not recent:
            cards.append(
                Card(
                    "renal-metformin-no-egfr",
                    "Metformin ordered with no eGFR in the last 12 months",
                    "warning",
                    RENAL_SOURCE,
                    [Evidence("Ordered", _name(order)), Evidence("eGFR", "missing in the last 12 months")],
                    "FDA 2016: check eGFR before starting metformin "
                    "(contraindicated < 30, not started at 30-44).",
                    [
                        common.order_test(
                            str(order.get("subject", {}).get("reference", "/")).split("/")[-1],
                            fx.CREATININE,
                            "Creatinine [Mass/volume] in Serum or Plasma",
                            "eGFR before metformin",
                        )
                    ],
                    override_reasons=OVERRIDES,
                    links=[("FDA Drug Safety Communication (2016)", metformin_renal.URL)],
                    outputs={"missing": ["eGFR"]},
                )
            )
            continue
        egfr = recent[0]
        verdict = metformin_renal.check(egfr.value)
        if verdict == "ok":
            continue
        critical = verdict == "contraindicated"
        cards.append(
            Card(
                f"renal-metformin-{verdict}",
                f"Metformin with eGFR {egfr.value:.0f}: "
                + ("contraindicated below 30" if critical else "starting it is not recommended at 30-44"),
                "critical" if critical else "warning",
                RENAL_SOURCE,
                [Evidence("Ordered", _name(order)), *renal.evidence(egfr)],
                "FDA 2016 metformin labelling: contraindicated at "
                "eGFR < 30 mL/min/1.73 m2; starting it at 30-44 is "
                "not recommended; eGFR by CKD-EPI 2021 from the latest creatinine.",
                _remove(order, "metformin"),
                override_reasons=OVERRIDES,
                links=[("FDA Drug Safety Communication (2016)", metformin_renal.URL)],
                outputs={"egfr": round(egfr.value, 1), "verdict": verdict},
            )
        )
    return cards


def allergy_cards(orders: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[Card]:
    cards = []
    active = [a for a in records if a.get("resourceType") == "AllergyIntolerance" and allergies.active(a)]
    for order in orders:
        text = fx.medication_names(order)
        for allergy in active:
            allergen = allergies.conflict(text, allergy)
            if allergen is None:
                continue
            cards.append(
                Card(
                    "allergy-conflict",
                    f"Allergy conflict: {_name(order)} with recorded allergy to {allergen}"[:139],
                    "critical" if allergy.get("criticality") == "high" else "warning",
                    ALLERGY_SOURCE,
                    [
                        Evidence("Ordered", _name(order)),
                        Evidence(
                            "Allergy",
                            f"{allergen} (criticality {allergy.get('criticality', 'unknown')})",
                            allergy.get("recordedDate"),
                            f"AllergyIntolerance/{allergy.get('id')}",
                        ),
                    ],
                    f"The ordered drug names the allergen or belongs to its class ({allergies.SOURCE}).",
                    _remove(order, _name(order)),
                    override_reasons=OVERRIDES,
                    outputs={"allergen": allergen},
                )
            )
    return cards


def handle(request: CdsRequest, data: Prefetched, today: date) -> list[Card]:
    orders = _drafts(request)
    if not orders:
        return []
    all_drafts = [
        e.get("resource") for e in request.context["draftOrders"].get("entry") or [] if isinstance(e, dict)
    ]
    others = fx.active_medications(data.resources("medications")) + [
        d for d in all_drafts if isinstance(d, dict) and d.get("resourceType") == "MedicationRequest"
    ]
    egfrs = renal.series(data.resource("patient"), data.resources("renal"))
    return [
        *allergy_cards(orders, data.resources("allergies")),
        *interaction_cards(orders, others),
        *renal_cards(orders, egfrs, today),
    ]


def services() -> list[Service]:
    description = "Checks ordered medications for interactions (curated ONC list), renal limits and allergies"
    return [
        Service(
            "medication-safety-select",
            "order-select",
            "Medication safety on selection",
            description,
            PREFETCH,
            handle,
        ),
        Service(
            "medication-safety-sign",
            "order-sign",
            "Medication safety before signing",
            description,
            PREFETCH,
            handle,
        ),
    ]
