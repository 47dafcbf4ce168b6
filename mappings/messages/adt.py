"""ADT: the patient, the visit and what the visit carries (NK1, AL1, DG1, PR1, IN1).

Every ADT event is a snapshot of the patient (PID/PD1) and, for visit events, of the visit
(PV1/PV2): the Patient and Encounter are conditional updates, so A08 after A01 updates and a
re-sent message changes nothing. What differs per event is the Encounter's status, its
end time and which locations it lists (see ``mappings/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mappings.context import Context
from mappings.datatypes.times import Where, date_time
from mappings.errors import REQUIRED_FIELD_MISSING, MappingError
from mappings.segments import al1, dg1, in1, nk1, pid, pr1, pv1


@dataclass(frozen=True)
class Visit:
    """How one event changes the visit: its status, location state and whether it must exist."""

    status: str | None  # None: from the data (A08: finished when discharged, else in-progress)
    location: str = "active"
    prior_location: bool = False
    ended: bool = False
    required: bool = True
    reopened: bool = False


VISITS: dict[str, Visit | None] = {
    "A01": Visit("in-progress"),
    "A02": Visit("in-progress", prior_location=True),
    "A03": Visit("finished", location="completed", ended=True),
    "A04": Visit("arrived"),
    "A05": Visit("planned", location="planned"),
    "A06": Visit("in-progress", prior_location=True),
    "A07": Visit("in-progress", prior_location=True),
    "A08": Visit(None, required=False),
    "A11": Visit("cancelled", location="completed"),
    "A12": Visit("in-progress"),
    "A13": Visit("in-progress", reopened=True),
    "A28": None,
    "A31": None,
}


def _end_time(ctx: Context) -> str | None:
    """When a discharge happened: PV1-45, else EVN-6 (event occurred), EVN-2, MSH-7."""
    evn = ctx.message.segment("EVN")
    candidates = [("PV1", ctx.message.get("PV1-45"), 45)]
    if evn is not None:
        candidates += [("EVN", evn.get(6), 6), ("EVN", evn.get(2), 2)]
    candidates.append(("MSH", ctx.message.timestamp, 7))
    for segment, text, n in candidates:
        if text:
            return date_time(text, ctx.zone, Where(segment, n))
    return None


def _visit(
    ctx: Context, event: Visit, patient_ref: dict[str, Any], patient: tuple[str, str]
) -> tuple[dict[str, Any] | None, tuple[str, str]]:
    """Add the Encounter for this event; returns its Reference (or None) and the scope identity."""
    segment = ctx.message.segment("PV1")
    if segment is None:
        if event.required:
            raise MappingError(REQUIRED_FIELD_MISSING, "PV1 is required for this event", "PV1")
        return None, patient
    ident = pv1.identity(ctx, segment, patient)
    if ident is None:
        if event.required:
            raise MappingError(REQUIRED_FIELD_MISSING, "PV1-19 visit number is missing", "PV1", 19)
        return None, patient
    status = event.status or ("finished" if segment.get(45) else "in-progress")
    resource = pv1.encounter(ctx, segment, ctx.message.segment("PV2"), patient_ref, ident, status)
    location_state = "completed" if status == "finished" else event.location
    places = pv1.locations(ctx, segment, current=location_state, prior=event.prior_location)
    if places:
        resource["location"] = places
    if event.ended:
        end = _end_time(ctx)
        if end:
            resource["period"] = resource.get("period", {}) | {"end": end}
    if event.reopened and "period" in resource:
        resource["period"].pop("end", None)
        if not resource["period"]:
            del resource["period"]
    url = ctx.put(resource, *ident)
    return {"reference": url}, ident


def adt(ctx: Context) -> None:
    """Any supported ADT event (A01-A13, A28, A31): Patient, Encounter and the visit's content."""
    patient_ref, patient = pid.reference(ctx, update=True)
    event = VISITS[ctx.message.trigger_event]
    encounter_ref, scope = (None, patient) if event is None else _visit(ctx, event, patient_ref, patient)
    message = ctx.message
    for i, segment in enumerate(message.segments("NK1"), start=1):
        nk1.related_person(ctx, segment, i, patient_ref, patient)
    for segment in message.segments("AL1"):
        al1.allergy(ctx, segment, patient_ref, patient)
    for segment in message.segments("DG1"):
        dg1.condition(ctx, segment, patient_ref, scope, encounter_ref)
    for segment in message.segments("PR1"):
        pr1.procedure(ctx, segment, patient_ref, scope, encounter_ref)
    for segment in message.segments("IN1"):
        in1.coverage(ctx, segment, patient_ref, patient)
