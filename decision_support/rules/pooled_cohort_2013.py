"""10-year ASCVD risk by the 2013 ACC/AHA pooled cohort equations (Goff et al., Circulation 2014).

risk = 1 - S10 ^ exp(sum(coef x term) - mean), per sex and race group (white equations for
other races, as the guideline says). Valid for ages 40-79, total cholesterol 130-320,
HDL 20-100 mg/dL, systolic BP 90-200 mm Hg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SOURCE = "2013 ACC/AHA pooled cohort equations, Goff et al. (doi:10.1161/01.cir.0000437741.48606.98)"
URL = "https://doi.org/10.1161/01.cir.0000437741.48606.98"
STATIN_THRESHOLD = 0.075  # 2013 ACC/AHA cholesterol guideline: >= 7.5 % -> statin


@dataclass(frozen=True)
class Equation:
    ln_age: float
    ln_age_sq: float
    ln_tc: float
    ln_age_ln_tc: float
    ln_hdl: float
    ln_age_ln_hdl: float
    ln_treated_sbp: float
    ln_age_ln_treated_sbp: float
    ln_untreated_sbp: float
    ln_age_ln_untreated_sbp: float
    smoker: float
    ln_age_smoker: float
    diabetes: float
    baseline_survival: float
    mean: float


EQUATIONS = {
    ("female", "white"): Equation(
        -29.799,
        4.884,
        13.540,
        -3.114,
        -13.578,
        3.149,
        2.019,
        0,
        1.957,
        0,
        7.574,
        -1.665,
        0.661,
        0.9665,
        -29.18,
    ),
    ("female", "african-american"): Equation(
        17.114, 0, 0.940, 0, -18.920, 4.475, 29.291, -6.432, 27.820, -6.087, 0.691, 0, 0.874, 0.9533, 86.61
    ),
    ("male", "white"): Equation(
        12.344, 0, 11.853, -2.664, -7.990, 1.769, 1.797, 0, 1.764, 0, 7.837, -1.795, 0.658, 0.9144, 61.18
    ),
    ("male", "african-american"): Equation(
        2.469, 0, 0.302, 0, -0.307, 0, 1.916, 0, 1.809, 0, 0.549, 0, 0.645, 0.8954, 19.54
    ),
}


def in_range(age: int, total_cholesterol: float, hdl: float, systolic: float) -> bool:
    return 40 <= age <= 79 and 130 <= total_cholesterol <= 320 and 20 <= hdl <= 100 and 90 <= systolic <= 200


def ten_year_risk(
    *,
    sex: str,
    race: str,
    age: int,
    total_cholesterol: float,
    hdl: float,
    systolic: float,
    treated: bool,
    smoker: bool,
    diabetes: bool,
) -> float:
    eq = EQUATIONS[(sex, race if race == "african-american" else "white")]
    la, ltc, lhdl, lsbp = math.log(age), math.log(total_cholesterol), math.log(hdl), math.log(systolic)
    s = eq.ln_age * la + eq.ln_age_sq * la * la + eq.ln_tc * ltc + eq.ln_age_ln_tc * la * ltc
    s += eq.ln_hdl * lhdl + eq.ln_age_ln_hdl * la * lhdl
    if treated:
        s += eq.ln_treated_sbp * lsbp + eq.ln_age_ln_treated_sbp * la * lsbp
    else:
        s += eq.ln_untreated_sbp * lsbp + eq.ln_age_ln_untreated_sbp * la * lsbp
    if smoker:
        s += eq.smoker + eq.ln_age_smoker * la
    if diabetes:
        s += eq.diabetes
    return 1 - eq.baseline_survival ** math.exp(s - eq.mean)
