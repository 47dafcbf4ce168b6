"""DG1 -> Condition (an encounter diagnosis), identified by DG1-20 or the visit and the code."""

from __future__ import annotations

from typing import Any

from mappings.context import Context
from mappings.datatypes.codes import codeable
from mappings.datatypes.identifiers import ei
from mappings.datatypes.times import Where, date_time
from mappings.message import Segment

_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
# DG1-6 diagnosis type: A admitting, W working, F final
_VERIFIED = {"A": "provisional", "W": "provisional", "F": "confirmed"}


def condition(
    ctx: Context,
    dg1: Segment,
    patient_ref: dict[str, Any],
    scope: tuple[str, str],
    encounter_ref: dict[str, Any] | None,
) -> None:
    """Add the Condition of one DG1; ``scope`` is the visit's identity (or the patient's)."""
    code = codeable(dg1.field(3))
    if code is None and dg1.get(4):
        code = {"text": dg1.get(4)}
    if code is None:
        return
    given = ei(dg1.field(20), ctx.default_system)
    if given:
        system, value = given["system"], given["value"]
    else:
        system, value = scope[0], f"{scope[1]}/DG1/{dg1.get(3) or dg1.get(4)}"
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "identifier": [{"system": system, "value": value}],
        "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "active"}]},
        "verificationStatus": {
            "coding": [{"system": _VERIFICATION, "code": _VERIFIED.get(dg1.get(6), "confirmed")}]
        },
        "category": [{"coding": [{"system": _CATEGORY, "code": "encounter-diagnosis"}]}],
        "code": code,
        "subject": patient_ref,
    }
    if encounter_ref:
        resource["encounter"] = encounter_ref
    when = date_time(dg1.get(5), ctx.zone, Where("DG1", 5))
    if when:
        resource["recordedDate"] = when
    ctx.put(resource, system, value)
