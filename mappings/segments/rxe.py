"""ORC + RXE/RXO (+RXR, TQ1) -> MedicationRequest, identified by the placer (else filler) order number."""

from __future__ import annotations

from typing import Any

from mappings.codemaps import fhir_code
from mappings.context import Context
from mappings.datatypes.codes import codeable
from mappings.datatypes.people import practitioner
from mappings.datatypes.quantities import number, unit
from mappings.datatypes.times import Where, date_time
from mappings.errors import REQUIRED_FIELD_MISSING, MappingError
from mappings.message import Segment
from mappings.segments.orders import Order


def medication_request(
    ctx: Context,
    orc: Segment | None,
    rxe: Segment | None,
    rxo: Segment | None,
    rxr: Segment | None,
    tq1: Segment | None,
    the_order: Order,
    patient_ref: dict[str, Any],
    encounter_ref: dict[str, Any] | None,
) -> None:
    """Add one MedicationRequest (conditional update)."""
    placer = the_order.placer or the_order.filler
    if placer is None:
        raise MappingError(REQUIRED_FIELD_MISSING, "placer or filler order number is missing", "ORC", 2)
    medication = (codeable(rxe.field(2)) if rxe is not None else None) or (
        codeable(rxo.field(1)) if rxo is not None else None
    )
    if medication is None:
        raise MappingError(REQUIRED_FIELD_MISSING, "RXE-2 give code is missing", "RXE", 2)
    control = orc.get(1) if orc is not None else "NW"
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "identifier": the_order.identifiers(),
        "status": fhir_code("medication-request-status", control),
        "intent": "order",
        "medicationCodeableConcept": medication,
        "subject": patient_ref,
    }
    if encounter_ref:
        resource["encounter"] = encounter_ref
    authored = date_time(orc.get(9), ctx.zone, Where("ORC", 9)) if orc is not None else None
    if authored:
        resource["authoredOn"] = authored
    requester = practitioner(ctx, orc.field(12)) if orc is not None else None
    if requester:
        resource["requester"] = requester
    dosage: dict[str, Any] = {}
    if rxe is not None:
        timing = (tq1.get(3) if tq1 is not None else "") or rxe.get(1, component=2)
        if timing:
            dosage["timing"] = {"code": {"text": timing}}
        amount = number(rxe.get(3))
        if amount is not None:
            dosage["doseAndRate"] = [{"doseQuantity": {"value": amount} | unit(rxe.field(5))}]
        instructions = "\n".join(f.text for f in rxe.repetitions(21) if f) or rxe.get(7, component=2)
        if instructions:
            dosage["text"] = instructions
    if rxr is not None:
        route = codeable(rxr.field(1), "0162")
        if route:
            dosage["route"] = route
    if dosage:
        resource["dosageInstruction"] = [dosage]
    if rxe is not None:
        dispense: dict[str, Any] = {}
        refills = number(rxe.get(12))
        if isinstance(refills, int):
            dispense["numberOfRepeatsAllowed"] = refills
        amount = number(rxe.get(10))
        if amount is not None:
            dispense["quantity"] = {"value": amount} | unit(rxe.field(11))
        if dispense:
            resource["dispenseRequest"] = dispense
        if rxe.get(9) in ("N", "G", "T"):
            resource["substitution"] = {"allowedBoolean": rxe.get(9) != "N"}
    ctx.put(resource, placer["system"], placer["value"])
