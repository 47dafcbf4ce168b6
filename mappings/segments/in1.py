"""IN1 -> Coverage (and the payer Organization), identified by the insurer and the policy number."""

from __future__ import annotations

from typing import Any

from mappings.codemaps import fhir_code
from mappings.context import Context
from mappings.datatypes.codes import codeable
from mappings.datatypes.identifiers import cx
from mappings.datatypes.times import Where, date
from mappings.message import Segment

_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"


def _payer(ctx: Context, in1: Segment) -> tuple[dict[str, Any], str]:
    """The payer Reference (a conditional create of the Organization of IN1-3) and its system."""
    company = cx(in1.field(3), ctx.default_system, Where("IN1", 3))
    name = in1.get(4)
    if not company:
        return ({"display": name} if name else {"display": "unknown payer"}), ctx.default_system
    org: dict[str, Any] = {"resourceType": "Organization", "identifier": [company], "active": True}
    if name:
        org["name"] = name
    ref: dict[str, Any] = {"reference": ctx.ensure(org, company["system"], company["value"])}
    if name:
        ref["display"] = name
    return ref, company["system"]


def coverage(ctx: Context, in1: Segment, patient_ref: dict[str, Any], patient: tuple[str, str]) -> None:
    """Add the Coverage of one IN1 (conditional update on the insurer's policy number)."""
    payer, payer_system = _payer(ctx, in1)
    policy = in1.get(36)
    plan = in1.get(2)
    if policy:
        system, value = payer_system, policy
    else:
        system, value = patient[0], f"{patient[1]}/IN1/{in1.get(3) or in1.get(4)}/{plan}"
    resource: dict[str, Any] = {
        "resourceType": "Coverage",
        "identifier": [{"system": system, "value": value}],
        "status": "active",
    }
    kind = codeable(in1.field(15))
    if kind:
        resource["type"] = kind
    member = cx(in1.field(49), payer_system, Where("IN1", 49))
    if member:
        resource["subscriberId"] = member["value"]
    resource["beneficiary"] = patient_ref
    relation = in1.get(17)
    if relation:
        resource["relationship"] = {
            "coding": [{"system": _RELATIONSHIP, "code": fhir_code("coverage-relationship", relation)}]
        }
    start, end = date(in1.get(12)[:8], Where("IN1", 12)), date(in1.get(13)[:8], Where("IN1", 13))
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    resource["payor"] = [payer]
    classes = []
    if in1.get(8):
        group = {"type": {"coding": [{"system": _CLASS, "code": "group"}]}, "value": in1.get(8)}
        classes.append(group | ({"name": in1.get(9)} if in1.get(9) else {}))
    if plan:
        classes.append({"type": {"coding": [{"system": _CLASS, "code": "plan"}]}, "value": plan})
    if classes:
        resource["class"] = classes
    ctx.put(resource, system, value)
