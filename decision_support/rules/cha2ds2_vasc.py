"""Stroke risk in atrial fibrillation: CHA2DS2-VASc (Lip et al., Chest 2010) and the 2019
AHA/ACC/HRS recommendation: oral anticoagulation at a score >= 2 in men, >= 3 in women."""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "CHA2DS2-VASc (Lip et al. 2010); 2019 AHA/ACC/HRS AF update (doi:10.1161/CIR.0000000000000665)"
URL = "https://doi.org/10.1161/CIR.0000000000000665"


@dataclass(frozen=True)
class Factors:
    age: int
    female: bool
    heart_failure: bool = False
    hypertension: bool = False
    diabetes: bool = False
    stroke_or_tia: bool = False
    vascular_disease: bool = False


def points(f: Factors) -> dict[str, int]:
    """Each factor's points (only those that score), so the card can show the sum."""
    parts = {
        "Congestive heart failure": int(f.heart_failure),
        "Hypertension": int(f.hypertension),
        "Age >= 75": 2 if f.age >= 75 else 0,
        "Diabetes": int(f.diabetes),
        "Stroke/TIA/thromboembolism": 2 * int(f.stroke_or_tia),
        "Vascular disease": int(f.vascular_disease),
        "Age 65-74": 1 if 65 <= f.age < 75 else 0,
        "Female sex": int(f.female),
    }
    return {k: v for k, v in parts.items() if v}


def score(f: Factors) -> int:
    return sum(points(f).values())


def anticoagulation_recommended(f: Factors) -> bool:
    return score(f) >= (3 if f.female else 2)
