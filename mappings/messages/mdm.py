"""MDM^T02 (original document notification and content): TXA + OBX -> DocumentReference."""

from __future__ import annotations

from mappings.context import Context
from mappings.messages.common import visit_reference
from mappings.segments import pid, txa
from mappings.segments.pid import require


def mdm(ctx: Context) -> None:
    """MDM^T02: one DocumentReference, conditional update on TXA-12."""
    segment = require(ctx, "TXA")
    patient_ref, patient = pid.reference(ctx, update=False)
    encounter_ref, _ = visit_reference(ctx, patient_ref, patient)
    txa.document(ctx, segment, ctx.message.segments("OBX"), patient_ref, encounter_ref)
