"""ORU^R01: results. Per order group: Observations (OBX), Specimens (SPM), the DiagnosticReport (OBR)
and the ServiceRequest it fulfils (conditional create); the Patient and visit are only pointed at."""

from __future__ import annotations

from typing import Any

from mappings.context import Context
from mappings.datatypes.attachments import from_obx
from mappings.messages.common import OrderGroup, order_groups, visit_reference
from mappings.segments import nte, obr, obx, orders, pid, spm


def observation_identity(
    ctx: Context,
    group_key: tuple[str, str] | None,
    patient: tuple[str, str],
    segment: Any,
    position: int,
    when: str,
) -> tuple[str, str]:
    """Order number + OBX set id; without an order number: patient, code, time (or control id), sub-id."""
    if group_key:
        return group_key[0], f"{group_key[1]}/{segment.get(1) or position}"
    moment = segment.get(14) or when or ctx.message.control_id
    sub = segment.get(4)
    return patient[0], f"{patient[1]}/{segment.get(3) or position}/{moment}" + (f"/{sub}" if sub else "")


def results(
    ctx: Context,
    group: OrderGroup,
    patient_ref: dict[str, Any],
    patient: tuple[str, str],
    encounter_ref: dict[str, Any] | None,
) -> None:
    """Map one order group of a result message."""
    the_order = orders.order(ctx, group.orc, group.obr)
    key = the_order.key
    request = orders.service_request(
        ctx, group.orc, group.obr, the_order, patient_ref, encounter_ref, update=False
    )
    when = group.obr.get(7) if group.obr is not None else ""
    refs, forms = [], []
    for position, (segment, notes) in enumerate(group.observations, start=1):
        if segment.get(2) == "ED":
            form = from_obx(segment, segment.get(3, component=2))
            if form:
                forms.append(form)
            continue
        ident = observation_identity(ctx, key, patient, segment, position, when)
        ref = obx.observation(ctx, segment, ident, patient_ref, encounter_ref, nte.notes(notes), when)
        if ref:
            refs.append(ref)
    specimens = []
    for segment in group.specimens:
        found = spm.specimen(ctx, segment, key or patient, patient_ref, request)
        if found:
            specimens.append(found)
    if group.obr is not None:
        ident = key or (patient[0], f"{patient[1]}/OBR/{group.obr.get(4)}/{when or ctx.message.control_id}")
        obr.report(
            ctx,
            group.obr,
            ident,
            the_order.identifiers(),
            patient_ref,
            encounter_ref,
            request,
            refs,
            specimens,
            forms,
        )


def oru(ctx: Context) -> None:
    """ORU^R01 (and its PID-less or PV1-less variants)."""
    patient_ref, patient = pid.reference(ctx, update=False)
    encounter_ref, _ = visit_reference(ctx, patient_ref, patient)
    for group in order_groups(ctx):
        results(ctx, group, patient_ref, patient, encounter_ref)
