"""patient-view: likelihood of angiographic coronary artery disease (Cleveland model).

Fires only for a patient whose record holds a chest-pain assessment (SNOMED 29857009): the
model describes patients worked up for chest pain, not the general population. With every
input present the card shows the probability, each feature's contribution and the model's
cross-validated figures; with some missing it names them and gives no score.
"""

from __future__ import annotations

from datetime import date

from decision_support import features as fx
from decision_support.cards import COMMON_OVERRIDES, Card, Evidence, Source
from decision_support.hooks import CdsRequest
from decision_support.models.artifact import Model, load
from decision_support.models.spec import CAD
from decision_support.prefetch import Prefetched
from decision_support.registry import Service
from decision_support.services import common
from decision_support.services.t2d_risk import model_basis, percent

ID = "cad-likelihood"
THRESHOLD = 0.5
CHEST_PAIN = (fx.SNOMED, "29857009")
CAD_SNOMED = {"53741008", "414545008", "22298006"}
FINDINGS = (
    "max-heart-rate-exercise",
    "exercise-angina",
    "st-depression-exercise",
    "st-slope",
    "vessels-fluoroscopy",
    "thallium-scan",
)
DATA_URL = "https://archive.ics.uci.edu/dataset/45/heart+disease"
PREFETCH = {
    "patient": common.PATIENT,
    "findings": "Observation?subject=Patient/{{context.patientId}}"
    f"&code={fx.SNOMED}|29857009,{fx.LOINC}|{fx.SYSTOLIC},{fx.LOINC}|{fx.BP_PANEL},{fx.LOINC}|{fx.CHOLESTEROL},"
    + ",".join(f"{CAD}|{c}" for c in FINDINGS)
    + "&_sort=-date&_count=200",
    "conditions": common.CONDITIONS,
}


def build(model: Model) -> Service:
    source = Source(
        f"Model {model.name} {model.version} (UCI Cleveland heart disease data)",
        DATA_URL,
        "cad-likelihood",
        "Coronary artery disease likelihood",
    )

    def handle(request: CdsRequest, data: Prefetched, today: date) -> list[Card]:
        observations = data.resources("findings")
        if not any(CHEST_PAIN in fx.codes_of(o.get("code")) for o in observations):
            return []  # outside the model's population: no chest-pain work-up on record
        if fx.conditions(data.resources("conditions"), CAD_SNOMED, ("I20", "I21", "I25")):
            return []
        patient = data.resource("patient")
        values, evidence, missing = {}, [], []
        for f in model.features:
            found = fx.model_input(f, patient, observations, today)
            if found is None:
                missing.append(f"{f['label']} ({f['system'] or 'Patient'} {f['code'] or f['fhir']})")
                continue
            values[f["name"]] = found.value
            if f.get("kind") != "concept" or found.value:  # show each chest-pain/scan finding once
                evidence.append(Evidence(f["label"], found.shown, found.when, found.reference))
        if missing:
            return [
                Card(
                    "cad-likelihood-incomplete",
                    "Coronary disease likelihood model not run: inputs missing",
                    "info",
                    source,
                    evidence or [Evidence("Inputs", "none recorded")],
                    "The model needs every input; it does not guess missing values. Missing: "
                    + "; ".join(missing)
                    + ".",
                    outputs={"missing": missing},
                    model_version=f"{model.name}@{model.version}",
                )
            ]
        prediction = model.predict(values)
        if prediction.probability < THRESHOLD:
            return []
        refs = [e.reference for e in evidence if e.reference and e.reference.startswith("Observation/")]
        return [
            Card(
                "cad-likelihood-high",
                f"Estimated {percent(prediction.probability)} likelihood of angiographic coronary "
                "artery disease",
                "warning",
                source,
                evidence,
                model_basis(model, prediction.contributions, prediction.probability, THRESHOLD),
                [common.diagnose(request.patient_id, "53741008", "Coronary arteriosclerosis", refs)],
                override_reasons=COMMON_OVERRIDES,
                links=[
                    (
                        "UCI Heart Disease data (Cleveland)",
                        "https://archive.ics.uci.edu/dataset/45/heart+disease",
                    )
                ],
                outputs={
                    "probability": round(prediction.probability, 4),
                    "contributions": {n: round(c, 4) for n, _, c in prediction.contributions},
                },
                model_version=f"{model.name}@{model.version}",
            )
        ]

    v = model.card["validation"]
    return Service(
        ID,
        "patient-view",
        "Coronary artery disease likelihood (model)",
        "Logistic regression on the Cleveland heart disease data (chest pain, exercise test, fluoroscopy, "
        f"thallium scan); cross-validated AUROC {v['auroc']:.2f}. Only for patients with a chest-pain "
        "work-up.",
        PREFETCH,
        handle,
        extra={"interop-model": {"name": model.name, "version": model.version, "card": model.card}},
    )


def service() -> Service:
    return build(load("cad-likelihood"))
