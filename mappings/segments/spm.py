"""SPM -> Specimen, identified by its placer/filler specimen id (SPM-2), else the order and SPM-1."""

from __future__ import annotations

from typing import Any

from mappings.context import Context
from mappings.datatypes.codes import codeable
from mappings.datatypes.times import Where, date_time
from mappings.ids import authority_system
from mappings.message import Segment


def specimen(
    ctx: Context,
    spm: Segment,
    scope: tuple[str, str],
    subject: dict[str, Any],
    request: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """Add the Specimen of one SPM; its Reference."""
    ids = spm.field(2)
    # SPM-2 is an EIP: component 1 the placer's EI, component 2 the filler's (subcomponents).
    chosen = 2 if ids.component(2, 1) else 1
    value = ids.component(chosen, 1)
    if value:
        system = (
            authority_system(ids.component(chosen, 2), ids.component(chosen, 3), ids.component(chosen, 4))
            or ctx.default_system
        )
    else:
        system, value = scope[0], f"{scope[1]}/SPM/{spm.get(1) or '1'}"
    resource: dict[str, Any] = {
        "resourceType": "Specimen",
        "identifier": [{"system": system, "value": value}],
        "status": "available",
    }
    kind = codeable(spm.field(4))
    if kind:
        resource["type"] = kind
    resource["subject"] = subject
    received = date_time(spm.get(18), ctx.zone, Where("SPM", 18))
    if received:
        resource["receivedTime"] = received
    if request:
        resource["request"] = [request]
    collection: dict[str, Any] = {}
    collected = date_time(spm.get(17, component=1), ctx.zone, Where("SPM", 17))
    if collected:
        collection["collectedDateTime"] = collected
    site = codeable(spm.field(8))
    if site:
        collection["bodySite"] = site
    method = codeable(spm.field(7))
    if method:
        collection["method"] = method
    if collection:
        resource["collection"] = collection
    return {"reference": ctx.put(resource, system, value)}
