"""Diabetes and prediabetes by the ADA Standards of Care 2024 (section 2, Table 2.1-2.2).

Diabetes: HbA1c >= 6.5 %, fasting plasma glucose >= 126 mg/dL, or 2-h OGTT glucose >= 200 mg/dL.
Prediabetes: HbA1c 5.7-6.4 %, FPG 100-125 mg/dL, 2-h glucose 140-199 mg/dL. Without
unequivocal hyperglycaemia the diagnosis needs two abnormal results: two different tests,
or the same test on two occasions; one abnormal result calls for a confirmatory test.
"""

from __future__ import annotations

from dataclasses import dataclass

from decision_support.features import FASTING_GLUCOSE, HBA1C, OGTT_2H_GLUCOSE, Measurement

SOURCE = "ADA Standards of Care in Diabetes 2024, section 2 (doi:10.2337/dc24-S002)"
URL = "https://doi.org/10.2337/dc24-S002"
# code -> (prediabetes from, diabetes from)
THRESHOLDS: dict[str, tuple[float, float]] = {
    HBA1C: (5.7, 6.5),
    FASTING_GLUCOSE: (100.0, 126.0),
    OGTT_2H_GLUCOSE: (140.0, 200.0),
}


def category(m: Measurement) -> str:
    """normal | prediabetes | diabetes, for one result."""
    low, high = THRESHOLDS[m.code]
    if m.value >= high:
        return "diabetes"
    return "prediabetes" if m.value >= low else "normal"


@dataclass(frozen=True)
class Assessment:
    status: str  # diagnostic | needs-confirmation | prediabetes | normal
    results: tuple[Measurement, ...]  # the results the status rests on


def assess(results: list[Measurement]) -> Assessment | None:
    """Classify a patient's glycaemic results (None when there are none)."""
    if not results:
        return None
    diabetic = [m for m in results if category(m) == "diabetes"]
    distinct = {(m.code, m.when[:10]) for m in diabetic}
    if len(distinct) >= 2:
        return Assessment("diagnostic", tuple(diabetic[:2]))
    if diabetic:
        return Assessment("needs-confirmation", (diabetic[0],))
    newest = max(results, key=lambda m: m.when)
    if category(newest) == "prediabetes":
        return Assessment("prediabetes", (newest,))
    return Assessment("normal", (newest,))
