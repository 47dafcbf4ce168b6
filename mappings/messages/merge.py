"""ADT^A40 (merge patient, patient identifier list): the surviving patient and the retired one.

A Bundle can say: the surviving patient (PID) is updated and links ``replaces`` the old one;
the old patient (MRG-1) is made inactive with a ``replaced-by`` link. It cannot say "move
every record of the old patient": re-pointing Encounters, Observations... from the old
Patient to the surviving one is a server-side operation (see ``mappings/README.md``).
"""

from __future__ import annotations

from typing import Any

from mappings.context import Context
from mappings.datatypes.identifiers import cx
from mappings.datatypes.names import xpn
from mappings.datatypes.times import Where
from mappings.errors import REQUIRED_FIELD_MISSING, MappingError
from mappings.ids import full_url
from mappings.message import Segment
from mappings.segments import pid


def merge(ctx: Context) -> None:
    """Every PID/MRG pair in the message: one merge each."""
    message = ctx.message
    pids, mrgs = message.segments("PID"), message.segments("MRG")
    if not mrgs:
        raise MappingError(REQUIRED_FIELD_MISSING, "MRG is required for a merge", "MRG")
    pd1 = message.segment("PD1")
    for survivor_pid, mrg in zip(pids, mrgs, strict=False):
        system, value = pid.identity(ctx, survivor_pid)
        survivor = pid.patient(ctx, survivor_pid, pd1)
        old = [i for f in mrg.repetitions(1) if (i := cx(f, ctx.default_system, Where("MRG", 1)))]
        if not old:
            raise MappingError(
                REQUIRED_FIELD_MISSING, "MRG-1 prior patient identifier list is empty", "MRG", 1
            )
        old_url = _retired(ctx, old, mrg, survivor_url=full_url("Patient", system, value))
        survivor["link"] = [{"other": {"reference": old_url}, "type": "replaces"}]
        ctx.put(survivor, system, value)


def _retired(ctx: Context, old: list[dict[str, Any]], mrg: Segment, survivor_url: str) -> str:
    """The retired Patient: its identifiers, its name as MRG-7 gives it, inactive, replaced-by."""
    resource: dict[str, Any] = {"resourceType": "Patient", "identifier": old, "active": False}
    name = xpn(mrg.field(7))
    if name:
        resource["name"] = [name]
    resource["link"] = [{"other": {"reference": survivor_url}, "type": "replaced-by"}]
    return ctx.put(resource, old[0]["system"], old[0]["value"])
