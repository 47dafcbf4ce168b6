"""PR1 -> Procedure, identified by PR1-19 or the visit, the code and the procedure time."""

from __future__ import annotations

from typing import Any

from mappings.context import Context
from mappings.datatypes.codes import codeable
from mappings.datatypes.identifiers import ei
from mappings.datatypes.people import practitioner
from mappings.datatypes.times import Where, date_time
from mappings.message import Segment


def procedure(
    ctx: Context,
    pr1: Segment,
    patient_ref: dict[str, Any],
    scope: tuple[str, str],
    encounter_ref: dict[str, Any] | None,
) -> None:
    """Add the Procedure of one PR1 (status completed: PR1 reports procedures performed)."""
    code = codeable(pr1.field(3))
    if code is None and pr1.get(4):
        code = {"text": pr1.get(4)}
    if code is None:
        return
    given = ei(pr1.field(19), ctx.default_system)
    if given:
        system, value = given["system"], given["value"]
    else:
        system, value = scope[0], f"{scope[1]}/PR1/{pr1.get(3) or pr1.get(4)}/{pr1.get(5)}"
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "identifier": [{"system": system, "value": value}],
        "status": "completed",
        "code": code,
        "subject": patient_ref,
    }
    if encounter_ref:
        resource["encounter"] = encounter_ref
    when = date_time(pr1.get(5), ctx.zone, Where("PR1", 5))
    if when:
        resource["performedDateTime"] = when
    performers = [{"actor": r} for n in (11, 12) for f in pr1.repetitions(n) if (r := practitioner(ctx, f))]
    if performers:
        resource["performer"] = performers
    ctx.put(resource, system, value)
