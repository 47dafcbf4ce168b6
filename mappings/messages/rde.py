"""RDE^O11: pharmacy/treatment encoded order. Each ORC group -> a MedicationRequest."""

from __future__ import annotations

from mappings.context import Context
from mappings.errors import REQUIRED_FIELD_MISSING, MappingError
from mappings.message import Segment
from mappings.messages.common import order_groups, visit_reference
from mappings.segments import orders, pid, rxe


def rde(ctx: Context) -> None:
    """RDE^O11: one MedicationRequest per ORC group (RXE, else RXO, gives the medication)."""
    patient_ref, patient = pid.reference(ctx, update=False)
    encounter_ref, _ = visit_reference(ctx, patient_ref, patient)
    groups = [g for g in order_groups(ctx) if g.orc is not None]
    if not groups:
        raise MappingError(REQUIRED_FIELD_MISSING, "no ORC order group", "ORC")
    for group in groups:
        found = {name: _first(group.extra, name) for name in ("RXE", "RXO", "RXR", "TQ1")}
        the_order = orders.order(ctx, group.orc, None)
        rxe.medication_request(
            ctx,
            group.orc,
            found["RXE"],
            found["RXO"],
            found["RXR"],
            found["TQ1"],
            the_order,
            patient_ref,
            encounter_ref,
        )


def _first(segments: list[Segment], name: str) -> Segment | None:
    return next((s for s in segments if s.name == name), None)
