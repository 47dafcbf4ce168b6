"""eGFR for the services that need it: CKD-EPI 2021 from creatinine, else a reported eGFR.

Not a service: a helper the treatment, medication-safety and discharge services share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from decision_support import features as fx
from decision_support.cards import Evidence
from decision_support.rules import ckd_epi_2021 as ckd
from decision_support.services import common

PREFETCH = common.observations(fx.CREATININE, *fx.EGFR_CODES)


@dataclass(frozen=True)
class Egfr:
    value: float
    when: str
    reference: str
    method: str
    inputs: tuple[Evidence, ...]

    @property
    def day(self) -> date:
        return date.fromisoformat(self.when[:10])


def series(patient: dict[str, Any] | None, observations: list[dict[str, Any]]) -> list[Egfr]:
    """Every eGFR we can justify, newest first."""
    found: list[Egfr] = []
    sex = fx.sex(patient)
    for m in fx.measurements(observations, fx.CREATININE):
        age = fx.age_on(patient, m.day)
        if sex is None or age is None or age < 18:
            continue
        value = ckd.egfr(m.value, age, sex)
        inputs: tuple[Evidence, ...] = (
            common.evidence(m),
            Evidence("Age / sex at the test", f"{age} / {sex}"),
        )
        found.append(Egfr(value, m.when, m.reference, "CKD-EPI 2021 from creatinine", inputs))
    computed = {e.reference for e in found}
    for code in fx.EGFR_CODES:
        for m in fx.measurements(observations, code):
            if m.reference not in computed:
                inputs = (
                    Evidence(
                        f"Reported eGFR (LOINC {code})", f"{m.value:.0f} {m.unit}", m.when[:10], m.reference
                    ),
                )
                found.append(Egfr(m.value, m.when, m.reference, "reported by the laboratory", inputs))
    return sorted(found, key=lambda e: e.when, reverse=True)


def evidence(e: Egfr) -> list[Evidence]:
    return [
        *e.inputs,
        Evidence(
            "eGFR", f"{e.value:.0f} mL/min/1.73 m2 ({e.method}; KDIGO {ckd.category(e.value)})", e.when[:10]
        ),
    ]
