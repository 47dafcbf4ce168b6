"""SIU^S12-S15: scheduling. The Appointment is a conditional update on its id: S12 books it, S13
reschedules, S14 modifies, S15 cancels; the Patient is only pointed at."""

from __future__ import annotations

from mappings.context import Context
from mappings.segments import pid, sch
from mappings.segments.pid import require


def siu(ctx: Context) -> None:
    """SIU^S12/S13/S14/S15."""
    segment = require(ctx, "SCH")
    patient_ref, _ = pid.reference(ctx, update=False)
    sch.appointment(ctx, segment, ctx.message.trigger_event, patient_ref)
