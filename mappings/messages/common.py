"""Pieces several message types share: the visit a non-ADT message points at, order groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mappings.context import Context
from mappings.message import Segment
from mappings.segments import pv1


def visit_reference(
    ctx: Context, patient_ref: dict[str, Any], patient: tuple[str, str]
) -> tuple[dict[str, Any] | None, tuple[str, str]]:
    """The Encounter a result/order/document points at (conditional create, never overwritten:
    ADT owns visits); its Reference and the scope identity (the visit's, else the patient's)."""
    segment = ctx.message.segment("PV1")
    if segment is None:
        return None, patient
    ident = pv1.identity(ctx, segment, patient)
    if ident is None:
        return None, patient
    status = "finished" if segment.get(45) else "in-progress"
    resource = pv1.encounter(ctx, segment, ctx.message.segment("PV2"), patient_ref, ident, status)
    return {"reference": ctx.ensure(resource, *ident)}, ident


@dataclass
class OrderGroup:
    """One ORC/OBR group and what follows it, in message order."""

    orc: Segment | None = None
    obr: Segment | None = None
    obr_notes: list[Segment] = field(default_factory=list)
    observations: list[tuple[Segment, list[Segment]]] = field(default_factory=list)
    specimens: list[Segment] = field(default_factory=list)
    extra: list[Segment] = field(default_factory=list)


def order_groups(ctx: Context) -> list[OrderGroup]:
    """Split the message into order groups: an ORC opens one, an OBR joins the ORC before it
    or opens its own; OBX (with the NTEs after it), SPM and other segments fill the open group.
    Segments before the first ORC/OBR (PID, PV1...) belong to no group."""
    groups: list[OrderGroup] = []
    current: OrderGroup | None = None
    notes: list[Segment] | None = None
    for segment in ctx.message.segments():
        name = segment.name
        if name == "ORC":
            current = OrderGroup(orc=segment)
            groups.append(current)
            notes = current.obr_notes
        elif name == "OBR":
            if current is None or current.obr is not None:
                current = OrderGroup()
                groups.append(current)
            current.obr = segment
            notes = current.obr_notes
        elif current is None:
            continue
        elif name == "OBX":
            notes = []
            current.observations.append((segment, notes))
        elif name == "NTE":
            if notes is not None:
                notes.append(segment)
        elif name == "SPM":
            current.specimens.append(segment)
            notes = None
        else:
            current.extra.append(segment)
            notes = None
    return groups
