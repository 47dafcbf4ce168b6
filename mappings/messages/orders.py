"""ORM^O01 and OML^O21: orders. Each ORC/OBR group -> a ServiceRequest (conditional update by the
placer number), with its notes and, for OML, its specimens."""

from __future__ import annotations

from mappings.context import Context
from mappings.errors import REQUIRED_FIELD_MISSING, MappingError
from mappings.messages.common import order_groups, visit_reference
from mappings.segments import nte, orders, pid, spm


def order_message(ctx: Context) -> None:
    """ORM^O01 / OML^O21: one ServiceRequest per order group."""
    patient_ref, patient = pid.reference(ctx, update=False)
    encounter_ref, _ = visit_reference(ctx, patient_ref, patient)
    groups = order_groups(ctx)
    if not groups:
        raise MappingError(REQUIRED_FIELD_MISSING, "no ORC/OBR order group", "ORC")
    for group in groups:
        the_order = orders.order(ctx, group.orc, group.obr)
        if the_order.key is None:
            raise MappingError(REQUIRED_FIELD_MISSING, "placer or filler order number is missing", "ORC", 2)
        if group.obr is None or not group.obr.get(4):
            raise MappingError(
                REQUIRED_FIELD_MISSING, "OBR-4 universal service identifier is missing", "OBR", 4
            )
        request = orders.service_request(
            ctx,
            group.orc,
            group.obr,
            the_order,
            patient_ref,
            encounter_ref,
            update=True,
            notes=nte.notes(group.obr_notes),
        )
        for segment in group.specimens:
            spm.specimen(ctx, segment, the_order.key, patient_ref, request)
