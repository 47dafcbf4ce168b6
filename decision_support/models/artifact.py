"""A trained model read from its JSON artifact: the prediction and each feature's contribution.

Contributions are coefficient x standardised value (log-odds), which is the whole model for a
logistic regression: the card can show exactly why the score is what it is.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from decision_support.models.spec import SPECS

ARTIFACT_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Prediction:
    probability: float
    contributions: list[tuple[str, float, float]]  # (feature name, value, log-odds), largest first


@dataclass(frozen=True)
class Model:
    name: str
    version: str
    intercept: float
    features: tuple[dict[str, Any], ...]
    card: dict[str, Any]

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    def predict(self, values: dict[str, float]) -> Prediction:
        parts = []
        for f in self.features:
            value = values[f["name"]]
            parts.append((f["name"], value, f["coefficient"] * (value - f["mean"]) / f["scale"]))
        logit = self.intercept + sum(p[2] for p in parts)
        parts.sort(key=lambda p: abs(p[2]), reverse=True)
        return Prediction(1 / (1 + math.exp(-logit)), parts)


@functools.cache
def load(name: str, directory: Path = ARTIFACT_DIR) -> Model:
    """Read an artifact once per process (cached): services hold the returned model."""
    spec = SPECS[name]
    raw = json.loads((directory / f"{spec.name}-{spec.version}.json").read_text())
    return Model(
        raw["name"], raw["version"], raw["model"]["intercept"], tuple(raw["model"]["features"]), raw["card"]
    )
