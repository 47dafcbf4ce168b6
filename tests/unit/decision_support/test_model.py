"""The T2D risk model: the artifact is what the training command makes, meets its targets,
predicts as scikit-learn does, and is read once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from decision_support.models import artifact, datasets, train
from decision_support.models.spec import CAD_LIKELIHOOD, SPECS, T2D_RISK

ARTIFACT = Path(artifact.ARTIFACT_DIR) / "t2d-risk-1.0.0.json"
# name -> (minimum AUROC, rows used, positives) from the targets and the data
TARGETS = {"t2d-risk": (0.82, 752, 264), "cad-likelihood": (0.89, 297, 137)}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_artifact_is_what_training_produces(name: str) -> None:
    spec = SPECS[name]
    retrained = train.train(spec)
    shipped = json.loads(train.artifact_path(spec).read_text())
    assert shipped["name"] == name and shipped["version"] == spec.version
    assert shipped["model"]["intercept"] == pytest.approx(retrained["model"]["intercept"], rel=1e-9)
    for ours, theirs in zip(shipped["model"]["features"], retrained["model"]["features"], strict=True):
        assert ours["name"] == theirs["name"] and ours["code"] == theirs["code"]
        for key in ("mean", "scale", "coefficient"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-9)
    assert shipped["card"]["validation"] == retrained["card"]["validation"]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_validation_meets_the_targets(name: str) -> None:
    v = json.loads(train.artifact_path(SPECS[name]).read_text())["card"]["validation"]
    auroc, rows, positives = TARGETS[name]
    assert v["auroc"] >= auroc
    assert 0.8 <= v["calibration_slope"] <= 1.2
    # Pima: 768 rows less 16 missing glucose or BMI; Cleveland: 303 less 6 missing ca or thal.
    assert (v["rows"], v["positives"]) == (rows, positives)


def test_model_card_says_what_a_reviewer_needs() -> None:
    card = json.loads(ARTIFACT.read_text())["card"]
    for key in ("data_source", "licence", "population", "limitations", "trained", "libraries", "seed"):
        assert card[key]
    features = json.loads(ARTIFACT.read_text())["model"]["features"]
    assert {(f["system"], f["code"]) for f in features if f["code"]} == {
        ("http://loinc.org", "1518-0"),
        ("http://loinc.org", "39156-5"),
        ("http://loinc.org", "11996-6"),
    }


def test_prediction_and_contributions_match_scikit_learn() -> None:
    x, y = train.training_data(T2D_RISK)
    scaler = StandardScaler().fit(x)
    reference = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(x), y)
    model = artifact.load("t2d-risk")
    assert T2D_RISK.name == model.name
    for row in x[:25]:
        values = dict(zip(model.feature_names, row, strict=True))
        prediction = model.predict(values)
        expected = reference.predict_proba(scaler.transform([row]))[0, 1]
        assert prediction.probability == pytest.approx(expected, rel=1e-6)
        logit = np.log(expected / (1 - expected))
        assert model.intercept + sum(c for _, _, c in prediction.contributions) == pytest.approx(
            logit, rel=1e-6
        )
        sizes = [abs(c) for _, _, c in prediction.contributions]
        assert sizes == sorted(sizes, reverse=True)


def test_the_training_data_is_pinned() -> None:
    rows = datasets.pima()
    assert len(rows) == 768 and sum(r["Outcome"] for r in rows) == 268
    assert sum(np.isnan(r["Glucose"]) for r in rows) == 5  # zeros read as missing
    heart = datasets.cleveland()
    # UCI's processed Cleveland file: 303 patients, 139 with disease (num > 0); not the Hungarian row
    assert len(heart) == 303 and sum(r["num"] > 0 for r in heart) == 139
    assert not any(r["age"] == 28 for r in heart)


def test_cad_features_name_their_fhir_codes() -> None:
    features = {f.name: f for f in CAD_LIKELIHOOD.features}
    assert (features["systolic"].system, features["systolic"].code) == ("http://loinc.org", "8480-6")
    chest_pain = features["cp_typical"]
    assert (chest_pain.system, chest_pain.code) == ("http://snomed.info/sct", "29857009")
    assert all(f.code or f.kind in ("age", "male") for f in CAD_LIKELIHOOD.features)


def test_a_changed_data_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "pima.csv"
    copy.write_bytes(datasets.PIMA_FILE.read_bytes() + b"1,1,1,1,1,1,1,1,1\n")
    with pytest.raises(ValueError, match="SHA-256"):
        datasets._checked(copy, datasets.PIMA_SHA256)
