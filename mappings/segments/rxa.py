"""RXA (+RXR) -> Immunization: vaccine (CVX), date, dose, lot, manufacturer (MVX), route and site."""

from __future__ import annotations

from typing import Any

from mappings.codemaps import fhir_code
from mappings.context import Context
from mappings.datatypes.codes import codeable, coding_system
from mappings.datatypes.people import practitioner
from mappings.datatypes.quantities import number, unit
from mappings.datatypes.times import Where, date, date_time
from mappings.errors import REQUIRED_FIELD_MISSING, MappingError
from mappings.message import Segment

_FUNCTION = "http://terminology.hl7.org/CodeSystem/v2-0443"
_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def immunization(
    ctx: Context,
    rxa: Segment,
    rxr: Segment | None,
    ident: tuple[str, str],
    patient_ref: dict[str, Any],
    encounter_ref: dict[str, Any] | None,
) -> None:
    """Add the Immunization of one RXA under ``ident`` (conditional update)."""
    vaccine = codeable(rxa.field(5))
    if vaccine is None:
        raise MappingError(REQUIRED_FIELD_MISSING, "RXA-5 administered code is missing", "RXA", 5)
    when = date_time(rxa.get(3), ctx.zone, Where("RXA", 3))
    if when is None:
        raise MappingError(
            REQUIRED_FIELD_MISSING, "RXA-3 date/time start of administration is missing", "RXA", 3
        )
    completion = rxa.get(20)
    status = "entered-in-error" if rxa.get(21) == "D" else fhir_code("immunization-status", completion)
    resource: dict[str, Any] = {
        "resourceType": "Immunization",
        "identifier": [{"system": ident[0], "value": ident[1]}],
        "status": status,
    }
    if status == "not-done":
        reason = codeable(rxa.field(18))
        if reason:
            resource["statusReason"] = reason
        elif completion == "RE":
            resource["statusReason"] = {
                "coding": [{"system": _REASON, "code": "PATOBJ", "display": "patient objection"}]
            }
    resource["vaccineCode"] = vaccine
    resource["patient"] = patient_ref
    if encounter_ref:
        resource["encounter"] = encounter_ref
    resource["occurrenceDateTime"] = when
    if rxa.get(9):
        resource["primarySource"] = rxa.get(9) == "00"
    source = codeable(rxa.field(9))
    if source and rxa.get(9) != "00":
        resource["reportOrigin"] = source
    maker = rxa.field(17)
    if maker:
        system = coding_system(maker.component(3)) or coding_system("MVX")
        resource["manufacturer"] = {"identifier": {"system": system, "value": maker.component(1)}} | (
            {"display": maker.component(2)} if maker.component(2) else {}
        )
    if rxa.get(15):
        resource["lotNumber"] = rxa.get(15)
    expires = date(rxa.get(16)[:8], Where("RXA", 16))
    if expires:
        resource["expirationDate"] = expires
    if rxr is not None:
        site = codeable(rxr.field(2), "0163")
        if site:
            resource["site"] = site
        route = codeable(rxr.field(1), "0162")
        if route:
            resource["route"] = route
    amount = number(rxa.get(6))
    if amount is not None and rxa.get(6) != "999":
        resource["doseQuantity"] = {"value": amount} | unit(rxa.field(7))
    performers = []
    for f in rxa.repetitions(10):
        ref = practitioner(ctx, f)
        if ref:
            function = {"coding": [{"system": _FUNCTION, "code": "AP", "display": "Administering Provider"}]}
            performers.append({"function": function, "actor": ref})
    if performers:
        resource["performer"] = performers
    if completion == "PA":
        resource["isSubpotent"] = True
    ctx.put(resource, *ident)
