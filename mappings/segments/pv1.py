"""PV1 (+PV2) -> Encounter (with its Locations and Practitioners), identified by the visit number."""

from __future__ import annotations

from typing import Any

from mappings.codemaps import fhir_code
from mappings.context import Context
from mappings.datatypes.codes import codeable, table_concept
from mappings.datatypes.identifiers import cx
from mappings.datatypes.locations import location
from mappings.datatypes.people import practitioner
from mappings.datatypes.times import Where, date_time
from mappings.message import Segment

_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# PV1 field -> participant type (v3 ParticipationType)
_PARTICIPANTS = (
    (7, "ATND", "attender"),
    (8, "REF", "referrer"),
    (9, "CON", "consultant"),
    (17, "ADM", "admitter"),
)


def identity(ctx: Context, pv1: Segment, patient: tuple[str, str]) -> tuple[str, str] | None:
    """The visit number (PV1-19), else one derived from the patient and the admit time (PV1-44).

    ``None`` when neither is there: the message names no visit that could be matched again.
    """
    visit = cx(pv1.field(19), ctx.default_system, Where("PV1", 19))
    if visit:
        return visit["system"], visit["value"]
    admitted = pv1.get(44)
    if admitted:
        return patient[0], f"{patient[1]}/visit/{admitted}"
    return None


def encounter(
    ctx: Context,
    pv1: Segment,
    pv2: Segment | None,
    patient_ref: dict[str, Any],
    ident: tuple[str, str],
    status: str,
) -> dict[str, Any]:
    """PV1/PV2 -> Encounter with ``status``; the caller decides status and end time per event."""
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "identifier": [{"type": table_concept("VN", "0203"), "system": ident[0], "value": ident[1]}],
        "status": status,
    }
    klass = fhir_code("encounter-class", pv1.get(2)) if pv1.get(2) else "AMB"
    resource["class"] = {
        "system": _ACT_CODE,
        "code": klass,
        "display": fhir_code("encounter-class-display", klass),
    }
    kind = table_concept(pv1.get(4), "0007")
    if kind:
        resource["type"] = [kind]
    service = table_concept(pv1.get(10), "0069")
    if service:
        resource["serviceType"] = service
    resource["subject"] = patient_ref
    participants = []
    for n, code, display in _PARTICIPANTS:
        for f in pv1.repetitions(n):
            ref = practitioner(ctx, f)
            if ref:
                kind_cc = {"coding": [{"system": _PARTICIPATION, "code": code, "display": display}]}
                participants.append({"type": [kind_cc], "individual": ref})
    if participants:
        resource["participant"] = participants
    start = date_time(pv1.get(44), ctx.zone, Where("PV1", 44))
    end = date_time(pv1.get(45), ctx.zone, Where("PV1", 45))
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    if pv2 is not None:
        reason = codeable(pv2.field(3))
        if reason:
            resource["reasonCode"] = [reason]
    hospitalization: dict[str, Any] = {}
    pre_admit = cx(pv1.field(5), ctx.default_system, Where("PV1", 5))
    if pre_admit:
        hospitalization["preAdmissionIdentifier"] = pre_admit
    for key, n, table in (
        ("admitSource", 14, "0023"),
        ("reAdmission", 13, "0092"),
        ("dischargeDisposition", 36, "0112"),
    ):
        concept = table_concept(pv1.get(n), table)
        if concept:
            hospitalization[key] = concept
    if hospitalization:
        resource["hospitalization"] = hospitalization
    return resource


def locations(ctx: Context, pv1: Segment, *, current: str, prior: bool) -> list[dict[str, Any]]:
    """Encounter.location: the prior location (PV1-6) as completed when ``prior``, then PV1-3."""
    out = []
    if prior:
        before = location(ctx, pv1.field(6))
        if before:
            out.append({"location": before, "status": "completed"})
    now = location(ctx, pv1.field(3))
    if now:
        out.append({"location": now, "status": current})
    return out
