"""Train a model and write its artifact: coefficients and the model card, as one JSON file.

Seeded and deterministic: the same data and library versions give the same artifact (the
``trained`` date aside). Figures come from repeated stratified 5-fold cross-validation on
out-of-fold predictions: AUROC (mean and SD over repeats), calibration slope and intercept
(logistic recalibration of the out-of-fold logits) and the Brier score. The final model is
refitted on all rows. Run it with ``interop cds train``.
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from decision_support.models import datasets
from decision_support.models.spec import SPECS, ModelSpec

SEED = 20260101
REPEATS = 5
FOLDS = 5
ARTIFACT_DIR = Path(__file__).parent


def _pipeline() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))


LOADERS = {"t2d-risk": datasets.pima, "cad-likelihood": datasets.cleveland}


def training_data(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Features and 0/1 outcome; rows missing a feature the model uses are dropped."""
    columns = [f.column for f in spec.features]
    rows = [r for r in LOADERS[spec.name]() if not any(np.isnan(r[c]) for c in columns)]
    x = np.array([[r[c] for c in columns] for r in rows])
    return x, np.array([int(r[spec.outcome_column] > 0) for r in rows])


def _calibration(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    logit = np.log(p / (1 - p)).reshape(-1, 1)
    fit = LogisticRegression(C=1e9, max_iter=1000).fit(logit, y)
    return float(fit.coef_[0][0]), float(fit.intercept_[0])


def validate(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    aucs, slopes, intercepts, briers = [], [], [], []
    for repeat in range(REPEATS):
        folds = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED + repeat)
        p = cross_val_predict(_pipeline(), x, y, cv=folds, method="predict_proba")[:, 1]
        aucs.append(roc_auc_score(y, p))
        slope, intercept = _calibration(y, p)
        slopes.append(slope)
        intercepts.append(intercept)
        briers.append(brier_score_loss(y, p))
    return {
        "method": f"{REPEATS}x repeated stratified {FOLDS}-fold cross-validation, out-of-fold predictions",
        "rows": len(y),
        "positives": int(y.sum()),
        "auroc": round(float(np.mean(aucs)), 4),
        "auroc_sd": round(float(np.std(aucs)), 4),
        "calibration_slope": round(float(np.mean(slopes)), 4),
        "calibration_intercept": round(float(np.mean(intercepts)), 4),
        "brier": round(float(np.mean(briers)), 4),
    }


def train(spec: ModelSpec, *, trained: datetime | None = None) -> dict[str, Any]:
    """The artifact as a dict: the fitted coefficients and the model card."""
    x, y = training_data(spec)
    fitted = _pipeline().fit(x, y)
    scaler: StandardScaler = fitted[0]
    model: LogisticRegression = fitted[1]
    when = trained or datetime.now(UTC)
    return {
        "name": spec.name,
        "version": spec.version,
        "model": {
            "type": "logistic-regression on standardised features",
            "intercept": float(model.intercept_[0]),
            "features": [
                {
                    "name": f.name,
                    "label": f.label,
                    "unit": f.unit,
                    "fhir": f.fhir,
                    "system": f.system,
                    "code": f.code,
                    "kind": f.kind,
                    "value_code": f.value_code,
                    "mean": float(scaler.mean_[i]),
                    "scale": float(scaler.scale_[i]),
                    "coefficient": float(model.coef_[0][i]),
                }
                for i, f in enumerate(spec.features)
            ],
        },
        "card": {
            "title": spec.title,
            "target": spec.target,
            "intended_use": spec.intended_use,
            "population": spec.population,
            "data_source": spec.data_source,
            "licence": spec.licence,
            "citation": spec.citation,
            "validation": validate(x, y),
            "trained": when.strftime("%Y-%m-%d"),
            "seed": SEED,
            "libraries": {
                "python": platform.python_version(),
                "scikit-learn": sklearn.__version__,
                "numpy": np.__version__,
            },
            "limitations": spec.limitations,
        },
    }


def artifact_path(spec: ModelSpec, directory: Path = ARTIFACT_DIR) -> Path:
    return directory / f"{spec.name}-{spec.version}.json"


def write(name: str, directory: Path = ARTIFACT_DIR) -> Path:
    spec = SPECS[name]
    directory.mkdir(parents=True, exist_ok=True)
    path = artifact_path(spec, directory)
    path.write_text(json.dumps(train(spec), indent=2) + "\n")
    return path
