"""PL (a patient location: point of care ^ room ^ bed ^ facility) -> Location and a Reference."""

from __future__ import annotations

from typing import Any

from mappings.context import Context
from mappings.ids import authority_system
from mappings.message import Field

# PL-6 person location type (table 0305) and the most specific component -> physicalType.
_PHYSICAL = {"bed": ("bd", "Bed"), "room": ("ro", "Room"), "ward": ("wa", "Ward")}
_PHYSICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/location-physical-type"


def location(ctx: Context, field: Field) -> dict[str, Any] | None:
    """A Reference to the Location a PL names, added as a conditional create.

    Identity: the facility (PL-4, else the sender's namespace) as system and the present
    components among point of care, room, bed (PL-1..3), building and floor (PL-7, 8)
    joined by ``/`` as value, so ``4W^402^B`` is one bed wherever it is named.
    """
    if not field:
        return None
    poc, room, bed = field.component(1), field.component(2), field.component(3)
    building, floor = field.component(7), field.component(8)
    parts = [p for p in (building, floor, poc, room, bed) if p]
    if not parts:
        return None
    system = authority_system(field.component(4, 1), field.component(4, 2), field.component(4, 3))
    system = system or ctx.default_system
    value = "/".join(parts)
    name = field.component(9) or " ".join(parts)
    kind = "bed" if bed else "room" if room else "ward"
    code, display = _PHYSICAL[kind]
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "identifier": [{"system": system, "value": value}],
        "status": "active",
        "name": name,
        "mode": "instance",
        "physicalType": {"coding": [{"system": _PHYSICAL_SYSTEM, "code": code, "display": display}]},
    }
    if field.component(4):
        resource["description"] = f"{name}, {field.component(4)}"
    return {"reference": ctx.ensure(resource, system, value), "display": name}
