"""NK1 -> RelatedPerson, identified by the patient's identity and the next-of-kin set id."""

from __future__ import annotations

from typing import Any

from mappings.codemaps import fhir_code
from mappings.context import Context
from mappings.datatypes.codes import codeable, table_concept
from mappings.datatypes.names import xad, xpn, xtn
from mappings.datatypes.times import Where, date
from mappings.message import Segment

_ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


def related_person(
    ctx: Context, nk1: Segment, index: int, patient_ref: dict[str, Any], patient: tuple[str, str]
) -> None:
    """Add the RelatedPerson of one NK1 (conditional update on ``<patient id>/NK1/<set id>``)."""
    names = [n for f in nk1.repetitions(2) if (n := xpn(f))]
    if not names and not nk1.get(13):
        return
    set_id = nk1.get(1) or str(index)
    system, value = patient[0], f"{patient[1]}/NK1/{set_id}"
    resource: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "identifier": [{"system": system, "value": value}],
        "active": True,
        "patient": patient_ref,
    }
    relationships = []
    relation = codeable(nk1.field(3), "0063")
    if relation:
        v3 = fhir_code("related-person-relationship-v3", nk1.get(3))
        if v3:
            relation.setdefault("coding", []).append({"system": _ROLE_CODE, "code": v3})
        relationships.append(relation)
    role = table_concept(nk1.get(7), "0131")
    if role:
        relationships.append(role)
    if relationships:
        resource["relationship"] = relationships
    if names:
        resource["name"] = names
    telecom = [t for f in nk1.repetitions(5) if (t := xtn(f))]
    telecom += [t if "use" in t else t | {"use": "work"} for f in nk1.repetitions(6) if (t := xtn(f))]
    if telecom:
        resource["telecom"] = telecom
    addresses = [a for f in nk1.repetitions(4) if (a := xad(f))]
    if addresses:
        resource["address"] = addresses
    if nk1.get(15):
        resource["gender"] = fhir_code("administrative-gender", nk1.get(15))
    birth = date(nk1.get(16)[:8], Where("NK1", 16))
    if birth:
        resource["birthDate"] = birth
    start, end = date(nk1.get(8)[:8], Where("NK1", 8)), date(nk1.get(9)[:8], Where("NK1", 9))
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    ctx.put(resource, system, value)
