"""One module per CDS service; :func:`all_services` builds them (loading models once)."""

from __future__ import annotations

from decision_support.registry import Service


def all_services() -> list[Service]:
    from decision_support.services import (
        cad_likelihood,
        cardiovascular,
        diabetes_diagnosis,
        discharge,
        medication_safety,
        t2d_risk,
        treatment,
    )

    return [
        diabetes_diagnosis.service(),
        t2d_risk.service(),
        cad_likelihood.service(),
        cardiovascular.service(),
        treatment.service(),
        *medication_safety.services(),
        discharge.service(),
    ]
