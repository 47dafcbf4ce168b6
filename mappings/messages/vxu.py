"""VXU^V04: vaccinations. Each ORC/RXA(/RXR) -> an Immunization, identified by the filler order
number (ORC-3, the id immunization registries use), else the patient, vaccine and date."""

from __future__ import annotations

from mappings.context import Context
from mappings.datatypes.identifiers import ei
from mappings.errors import SEGMENT_SEQUENCE_ERROR, MappingError
from mappings.messages.common import order_groups, visit_reference
from mappings.segments import pid, rxa


def vxu(ctx: Context) -> None:
    """VXU^V04: one Immunization per RXA."""
    patient_ref, patient = pid.reference(ctx, update=False)
    encounter_ref, _ = visit_reference(ctx, patient_ref, patient)
    found = 0
    for group in order_groups(ctx):
        administrations = [s for s in group.extra if s.name == "RXA"]
        routes = [s for s in group.extra if s.name == "RXR"]
        for segment in administrations:
            found += 1
            filler = ei(group.orc.field(3), ctx.default_system) if group.orc is not None else None
            if filler:
                ident = (filler["system"], filler["value"])
            else:
                ident = (patient[0], f"{patient[1]}/RXA/{segment.get(5)}/{segment.get(3)}")
            rxa.immunization(ctx, segment, routes[0] if routes else None, ident, patient_ref, encounter_ref)
    if not found:
        # VXU without ORC (v2.3/2.4): RXA directly after PID/PV1
        segments = ctx.message.segments("RXA")
        if not segments:
            raise MappingError(SEGMENT_SEQUENCE_ERROR, "VXU without RXA", "RXA")
        route = ctx.message.segment("RXR")
        for segment in segments:
            ident = (patient[0], f"{patient[1]}/RXA/{segment.get(5)}/{segment.get(3)}")
            rxa.immunization(ctx, segment, route, ident, patient_ref, encounter_ref)
