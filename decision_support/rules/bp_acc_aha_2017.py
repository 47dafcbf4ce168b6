"""Blood-pressure categories by the 2017 ACC/AHA guideline (Whelton et al., Hypertension 2018).

Normal < 120 and < 80; elevated 120-129 and < 80; stage 1 130-139 or 80-89; stage 2 >= 140
or >= 90 (mm Hg). Classification uses the average of >= 2 readings on >= 2 occasions; a
reading > 180 systolic and/or > 120 diastolic is a hypertensive crisis on its own.
"""

from __future__ import annotations

SOURCE = "2017 ACC/AHA High Blood Pressure Guideline (doi:10.1161/HYP.0000000000000065)"
URL = "https://doi.org/10.1161/HYP.0000000000000065"
LABELS = {
    "normal": "Normal",
    "elevated": "Elevated",
    "stage-1": "Stage 1 hypertension",
    "stage-2": "Stage 2 hypertension",
}


def stage(systolic: float, diastolic: float) -> str:
    if systolic >= 140 or diastolic >= 90:
        return "stage-2"
    if systolic >= 130 or diastolic >= 80:
        return "stage-1"
    if systolic >= 120:
        return "elevated"
    return "normal"


def crisis(systolic: float, diastolic: float) -> bool:
    return systolic > 180 or diastolic > 120
