"""patient-view: risk of undiagnosed type 2 diabetes from a logistic regression (Pima data).

The model is read once when the service is built. A card shows the probability, each
feature's contribution (coefficient x standardised value) and the model's cross-validated
figures, so the clinician can see why. It fires only for the model's population and never
on missing inputs: when one is missing the card says which and what to measure, no score.
"""

from __future__ import annotations

from datetime import date

from decision_support import features as fx
from decision_support.cards import COMMON_OVERRIDES, Card, Evidence, Source
from decision_support.hooks import CdsRequest
from decision_support.models.artifact import Model, load
from decision_support.prefetch import Prefetched
from decision_support.registry import Service
from decision_support.services import common
from decision_support.services.diabetes_diagnosis import DIABETES_SNOMED

ID = "t2d-risk"
THRESHOLD = 0.5  # the probability from which an HbA1c is suggested
PREFETCH = {
    "patient": common.PATIENT,
    "observations": common.observations(fx.OGTT_2H_GLUCOSE, fx.BMI, fx.PREGNANCIES, fx.HBA1C),
    "conditions": common.CONDITIONS,
}
HBA1C_RECENT_DAYS = 365


def percent(probability: float) -> str:
    """A probability for a summary: never "100 %" or "0 %", which a model cannot know."""
    if probability >= 0.995:
        return "> 99%"
    if probability < 0.005:
        return "< 1%"
    return f"{probability:.0%}"


def model_basis(
    model: Model, contributions: list[tuple[str, float, float]], probability: float, threshold: float
) -> str:
    """A logistic model's explanation: each contribution, the probability, the validation, the data."""
    labels = {f["name"]: f for f in model.features}
    v = model.card["validation"]
    rows = [
        "Logistic regression; contribution = coefficient x "
        "(value - training mean) / training SD, in log-odds.",
        "",
        "| feature | value | contribution |",
        "|---|---|---|",
        *[
            f"| {labels[name]['label']} | {value:g} {labels[name]['unit']} | {part:+.2f} |"
            for name, value, part in contributions
        ],
        "",
        f"Probability {percent(probability)} (threshold {threshold:.0%}). "
        f"Model `{model.name}` {model.version}, "
        f"trained {model.card['trained']}: AUROC {v['auroc']:.3f} "
        f"(SD {v['auroc_sd']:.3f}), calibration slope "
        f"{v['calibration_slope']:.2f}, intercept {v['calibration_intercept']:+.2f}, Brier {v['brier']:.3f} "
        f"({v['method']}; {v['rows']} rows).",
        f"Data: {model.card['data_source']}. Population: {model.card['population']}.",
        f"Limitations: {model.card['limitations']}",
    ]
    return "\n".join(rows)


def build(model: Model) -> Service:
    source = Source(
        f"Model {model.name} {model.version} (Pima Indians diabetes data)",
        "https://archive.ics.uci.edu/dataset/34/diabetes",
        "t2d-risk",
        "Undiagnosed type 2 diabetes risk",
    )

    def handle(request: CdsRequest, data: Prefetched, today: date) -> list[Card]:
        patient = data.resource("patient")
        age = fx.age_on(patient, today)
        if fx.sex(patient) != "female" or age is None or age < 21:
            return []  # outside the model's population: no card
        conditions = data.resources("conditions")
        if fx.conditions(conditions, DIABETES_SNOMED, ("E10", "E11", "E13")):
            return []
        observations = data.resources("observations")
        recent_a1c = fx.latest(observations, fx.HBA1C)
        if recent_a1c and (today - recent_a1c.day).days <= HBA1C_RECENT_DAYS:
            return []  # already tested: the diagnosis service reads the result
        values: dict[str, float] = {"age": float(age)}
        evidence = [Evidence("Age", f"{age} years", today.isoformat(), f"Patient/{request.patient_id}")]
        missing = []
        for f in model.features:
            if f["code"] is None:
                continue
            m = fx.latest(observations, f["code"])
            if m is None:
                missing.append(f"{f['label']} (LOINC {f['code']})")
                continue
            values[f["name"]] = m.value
            evidence.append(common.evidence(m))
        if missing:
            return [
                Card(
                    "t2d-risk-incomplete",
                    "Diabetes risk model not run: inputs missing",
                    "info",
                    source,
                    evidence or [Evidence("Inputs", "none recorded")],
                    "The model needs every input; it does not guess missing values. Missing: "
                    + "; ".join(missing)
                    + ".",
                    outputs={"missing": missing},
                    model_version=model.version,
                )
            ]
        prediction = model.predict(values)
        outputs = {
            "probability": round(prediction.probability, 4),
            "contributions": {n: round(c, 4) for n, _, c in prediction.contributions},
        }
        if prediction.probability < THRESHOLD:
            return []
        return [
            Card(
                "t2d-risk-high",
                f"Estimated {prediction.probability:.0%} risk of "
                "undiagnosed type 2 diabetes: consider an HbA1c",
                "warning",
                source,
                evidence,
                model_basis(model, prediction.contributions, prediction.probability, THRESHOLD),
                [
                    common.order_test(
                        request.patient_id, fx.HBA1C, "Hemoglobin A1c", "Model-estimated diabetes risk"
                    )
                ],
                override_reasons=COMMON_OVERRIDES,
                links=[
                    ("Pima Indians diabetes data (UCI)", "https://archive.ics.uci.edu/dataset/34/diabetes")
                ],
                outputs=outputs,
                model_version=f"{model.name}@{model.version}",
            )
        ]

    return Service(
        ID,
        "patient-view",
        "Undiagnosed type 2 diabetes risk (model)",
        "Logistic regression on 2-h glucose, BMI, age and pregnancies (Pima Indians diabetes data); "
        f"suggests an HbA1c from {THRESHOLD:.0%} risk. Cross-validated AUROC "
        f"{model.card['validation']['auroc']:.2f}. Not for men or under-21s.",
        PREFETCH,
        handle,
        extra={"interop-model": {"name": model.name, "version": model.version, "card": model.card}},
    )


def service() -> Service:
    return build(load("t2d-risk"))
