"""ORC/OBR -> ServiceRequest, and the order identity (placer and filler numbers) results hang on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mappings.codemaps import fhir_code
from mappings.context import Context
from mappings.datatypes.codes import codeable, table_coding
from mappings.datatypes.identifiers import ei, ei_system
from mappings.datatypes.people import practitioner
from mappings.datatypes.times import Where, date_time
from mappings.message import Segment


@dataclass(frozen=True)
class Order:
    """The identifiers of one order: placer (ORC-2/OBR-2) and filler (ORC-3/OBR-3), either may be missing."""

    placer: dict[str, Any] | None
    filler: dict[str, Any] | None

    @property
    def key(self) -> tuple[str, str] | None:
        """The identity results and reports are scoped by: the filler number, else the placer's."""
        chosen = self.filler or self.placer
        return (chosen["system"], chosen["value"]) if chosen else None

    def identifiers(self) -> list[dict[str, Any]]:
        out = []
        for ident, code in ((self.placer, "PLAC"), (self.filler, "FILL")):
            if ident:
                out.append({"type": {"coding": [table_coding(code, "0203")]}} | ident)
        return out


def order(ctx: Context, orc: Segment | None, obr: Segment | None) -> Order:
    """The placer and filler numbers from OBR (else ORC); systems from their namespaces."""

    def pick(n: int) -> dict[str, Any] | None:
        for segment in (obr, orc):
            if segment is not None and segment.get(n):
                return ei(segment.field(n), ctx.default_system)
        return None

    return Order(pick(2), pick(3))


def service_request(
    ctx: Context,
    orc: Segment | None,
    obr: Segment | None,
    the_order: Order,
    patient_ref: dict[str, Any],
    encounter_ref: dict[str, Any] | None,
    *,
    update: bool,
    notes: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """Add the ServiceRequest of an order (by placer number, else filler); its Reference.

    ``update``: a conditional update (the order message owns it) or a conditional create
    (a result only points at the order it fulfils).
    """
    placer_key = the_order.placer or the_order.filler
    code = codeable(obr.field(4)) if obr is not None else None
    if placer_key is None or code is None:
        return None
    control = orc.get(1) if orc is not None else ""
    status = (
        fhir_code("order-status", orc.get(5))
        if orc is not None and orc.get(5) and fhir_code("order-status", orc.get(5))
        else fhir_code("order-control-status", control)
    )
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": the_order.identifiers(),
        "status": status if update else "active",
        "intent": "order",
        "code": code,
        "subject": patient_ref,
    }
    if obr is not None and obr.get(5) in ("S", "A"):
        resource["priority"] = "stat" if obr.get(5) == "S" else "asap"
    if encounter_ref:
        resource["encounter"] = encounter_ref
    authored = date_time(orc.get(9), ctx.zone, Where("ORC", 9)) if orc is not None else None
    if authored:
        resource["authoredOn"] = authored
    requester = (practitioner(ctx, orc.field(12)) if orc is not None else None) or (
        practitioner(ctx, obr.field(16)) if obr is not None else None
    )
    if requester:
        resource["requester"] = requester
    reasons = [c for f in obr.repetitions(31) if (c := codeable(f))] if obr is not None else []
    if reasons:
        resource["reasonCode"] = reasons
    if notes:
        resource["note"] = notes
    system, value = placer_key["system"], placer_key["value"]
    url = ctx.put(resource, system, value) if update else ctx.ensure(resource, system, value)
    return {"reference": url}


def placer_system(ctx: Context, segment: Segment, n: int) -> str:
    """The identifier system of an EI field (for callers that build their own values)."""
    return ei_system(segment.field(n), ctx.default_system)
