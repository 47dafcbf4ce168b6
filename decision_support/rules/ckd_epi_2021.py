"""Estimated GFR by the race-free CKD-EPI 2021 creatinine equation, and KDIGO G categories.

eGFR = 142 x min(Scr/k, 1)^a x max(Scr/k, 1)^-1.200 x 0.9938^age x 1.012 [female],
k = 0.7 (female) / 0.9 (male), a = -0.241 (female) / -0.302 (male); Scr in mg/dL.
Inker LA et al., N Engl J Med 2021;385:1737-49.
"""

from __future__ import annotations

SOURCE = "CKD-EPI 2021 creatinine equation, Inker et al. NEJM 2021 (doi:10.1056/NEJMoa2102953)"
URL = "https://doi.org/10.1056/NEJMoa2102953"
KDIGO_URL = "https://doi.org/10.1016/j.kint.2023.10.018"
# (lower bound, category), highest first (KDIGO 2024)
CATEGORIES = ((90.0, "G1"), (60.0, "G2"), (45.0, "G3a"), (30.0, "G3b"), (15.0, "G4"), (0.0, "G5"))


def egfr(creatinine_mg_dl: float, age: int, sex: str) -> float:
    if creatinine_mg_dl <= 0 or age < 18:
        raise ValueError("CKD-EPI 2021 applies to adults with a positive creatinine")
    female = sex == "female"
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = creatinine_mg_dl / kappa
    value = 142 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938**age
    return value * (1.012 if female else 1.0)


def category(egfr_value: float) -> str:
    return next(name for bound, name in CATEGORIES if egfr_value >= bound)
