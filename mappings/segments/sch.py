"""SCH + AIS/AIL/AIP -> Appointment, identified by the placer (SCH-1) or filler (SCH-2) appointment id."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mappings.codemaps import fhir_code
from mappings.context import Context
from mappings.datatypes.codes import codeable
from mappings.datatypes.identifiers import ei
from mappings.datatypes.locations import location
from mappings.datatypes.people import practitioner
from mappings.datatypes.times import Where, date_time
from mappings.errors import REQUIRED_FIELD_MISSING, MappingError
from mappings.message import Segment

_UNITS = {"M": 1, "MIN": 1, "H": 60, "HR": 60, "S": 1 / 60, "D": 1440}


def identity(ctx: Context, sch: Segment) -> tuple[list[dict[str, Any]], tuple[str, str]]:
    """The appointment's identifiers (SCH-1 placer, SCH-2 filler) and the one it is matched on."""
    found = [i for n in (1, 2) if (i := ei(sch.field(n), ctx.default_system))]
    if not found:
        raise MappingError(REQUIRED_FIELD_MISSING, "SCH-1/SCH-2 appointment id is missing", "SCH", 1)
    return found, (found[0]["system"], found[0]["value"])


def _minutes(amount: str, units: str) -> int | None:
    if not amount.isdigit():
        return None
    return int(int(amount) * _UNITS.get(units.upper() or "MIN", 1))


def appointment(ctx: Context, sch: Segment, trigger: str, patient_ref: dict[str, Any]) -> None:
    """Add the Appointment of a SIU message (SCH and every AIS/AIL/AIP in it)."""
    identifiers, ident = identity(ctx, sch)
    message = ctx.message
    status = fhir_code("appointment-status", sch.get(25)) if sch.get(25) else None
    if trigger == "S15" or not status:
        status = fhir_code("appointment-status-by-trigger", trigger) or "booked"
    resource: dict[str, Any] = {"resourceType": "Appointment", "identifier": identifiers, "status": status}
    ais = message.segment("AIS")
    if ais is not None:
        service = codeable(ais.field(3))
        if service:
            resource["serviceType"] = [service]
    kind = codeable(sch.field(7), "0276")
    if kind:
        resource["appointmentType"] = kind
    reason = codeable(sch.field(6))
    if reason:
        resource["reasonCode"] = [reason]
    start_text, minutes = "", None
    if ais is not None and ais.get(4):
        start_text, minutes = ais.get(4), _minutes(ais.get(7), ais.get(8, component=1))
    elif sch.get(11, component=4):  # TQ-4 start date/time (v2.3-2.5)
        start_text = sch.get(11, component=4)
    minutes = minutes or _minutes(sch.get(9), sch.get(10, component=1))
    start = date_time(
        start_text, ctx.zone, Where("AIS" if ais is not None else "SCH", 4 if ais else 11), instant=True
    )
    if start:
        resource["start"] = start
        end_text = sch.get(11, component=5)
        end = date_time(end_text, ctx.zone, Where("SCH", 11), instant=True) if end_text else None
        if not end and minutes:
            moment = datetime.fromisoformat(start) + timedelta(minutes=minutes)
            end = moment.isoformat()
        if end:
            resource["end"] = end
    if minutes:
        resource["minutesDuration"] = minutes
    if sch.get(8):
        resource["comment"] = f"Appointment type: {sch.get(8, component=2) or sch.get(8)}"
    participants = [{"actor": patient_ref, "status": "accepted"}]
    for aip in message.segments("AIP"):
        ref = practitioner(ctx, aip.field(3))
        if ref:
            participants.append({"actor": ref, "status": "accepted"})
    for ail in message.segments("AIL"):
        ref = location(ctx, ail.field(3))
        if ref:
            participants.append({"actor": ref, "status": "accepted"})
    resource["participant"] = participants
    ctx.put(resource, *ident)
