"""PID (+PD1) -> Patient, and the Patient's identity (the PID-3 identifier the record is matched on)."""

from __future__ import annotations

from typing import Any

from mappings.codemaps import fhir_code
from mappings.context import Context
from mappings.datatypes.codes import codeable
from mappings.datatypes.identifiers import cx
from mappings.datatypes.names import xad, xpn, xtn
from mappings.datatypes.people import practitioner
from mappings.datatypes.times import Where, date, date_time
from mappings.errors import REQUIRED_FIELD_MISSING, SEGMENT_SEQUENCE_ERROR, MappingError
from mappings.message import Segment

_MAIDEN_NAME = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"
_BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
_SSN = "http://hl7.org/fhir/sid/us-ssn"


def require(ctx: Context, name: str) -> Segment:
    """The first ``name`` segment, or a 100 (segment sequence error) naming it."""
    segment = ctx.message.segment(name)
    if segment is None:
        raise MappingError(SEGMENT_SEQUENCE_ERROR, f"required segment {name} is missing", name)
    return segment


def identifiers(ctx: Context, pid: Segment) -> list[dict[str, Any]]:
    """Every identifier of the patient: PID-3 (all repetitions), PID-2 and PID-4 (v2.3/2.4), PID-19."""
    where = Where("PID", 3)
    found = [i for f in pid.repetitions(3) if (i := cx(f, ctx.default_system, where))]
    for n in (2, 4):
        found += [i for f in pid.repetitions(n) if (i := cx(f, ctx.default_system, Where("PID", n)))]
    if pid.get(19):
        found.append({"system": _SSN, "value": pid.get(19)})
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for ident in found:
        unique.setdefault((ident["system"], ident["value"]), ident)
    return list(unique.values())


def identity(ctx: Context, pid: Segment) -> tuple[str, str]:
    """The identifier the Patient is matched on: the first PID-3 of type MR, else the first PID-3."""
    where = Where("PID", 3)
    candidates = [i for f in pid.repetitions(3) if (i := cx(f, ctx.default_system, where))]
    if not candidates:
        raise MappingError(REQUIRED_FIELD_MISSING, "PID-3 patient identifier list is empty", "PID", 3)
    chosen = next((i for i in candidates if _type_code(i) == "MR"), candidates[0])
    return chosen["system"], chosen["value"]


def _type_code(ident: dict[str, Any]) -> str:
    codings = ident.get("type", {}).get("coding", [{}])
    return str(codings[0].get("code", ""))


def patient(ctx: Context, pid: Segment, pd1: Segment | None = None) -> dict[str, Any]:
    """PID (+PD1) -> Patient (without id; identity is by identifier)."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": identifiers(ctx, pid),
        "active": True,
    }
    names = [n for f in pid.repetitions(5) if (n := xpn(f))]
    if names:
        resource["name"] = names
    telecom = [t for f in pid.repetitions(13) if (t := xtn(f))]
    telecom += [t if "use" in t else t | {"use": "work"} for f in pid.repetitions(14) if (t := xtn(f))]
    if telecom:
        resource["telecom"] = telecom
    if pid.get(8):
        resource["gender"] = fhir_code("administrative-gender", pid.get(8))
    birth = pid.get(7)
    if birth:
        resource["birthDate"] = date(birth[:8], Where("PID", 7))
        if len(birth) > 8:
            born_at = date_time(birth, ctx.zone, Where("PID", 7))
            resource["_birthDate"] = {"extension": [{"url": _BIRTH_TIME, "valueDateTime": born_at}]}
    if pid.get(30) == "Y" or pid.get(29):
        died = date_time(pid.get(29), ctx.zone, Where("PID", 29))
        resource["deceasedDateTime" if died else "deceasedBoolean"] = died or True
    elif pid.get(30) == "N":
        resource["deceasedBoolean"] = False
    addresses = [a for f in pid.repetitions(11) if (a := xad(f))]
    if addresses:
        resource["address"] = addresses
    marital = codeable(pid.field(16), "0002")
    if marital:
        resource["maritalStatus"] = marital
    twin, order = pid.get(24), pid.get(25)
    if twin == "Y" and order.isdigit():
        resource["multipleBirthInteger"] = int(order)
    elif twin in ("Y", "N"):
        resource["multipleBirthBoolean"] = twin == "Y"
    language = codeable(pid.field(15))
    if language:
        resource["communication"] = [{"language": language}]
    mother = xpn(pid.field(6))
    if mother and mother.get("family"):
        resource["extension"] = [{"url": _MAIDEN_NAME, "valueString": mother["family"]}]
    if pd1 is not None:
        doctors = [r for f in pd1.repetitions(4) if (r := practitioner(ctx, f))]
        if doctors:
            resource["generalPractitioner"] = doctors
    return resource


def reference(ctx: Context, *, update: bool) -> tuple[dict[str, Any], tuple[str, str]]:
    """Map the message's PID (+PD1) and add the Patient: a conditional update when ``update``
    (ADT: the sender owns the demographics), else a conditional create (a lab result only
    points at its patient). Returns the Reference and the identity.
    """
    pid = require(ctx, "PID")
    system, value = identity(ctx, pid)
    resource = patient(ctx, pid, ctx.message.segment("PD1"))
    url = ctx.put(resource, system, value) if update else ctx.ensure(resource, system, value)
    ref: dict[str, Any] = {"reference": url}
    name = resource.get("name", [{}])[0]
    display = " ".join([*name.get("given", []), name.get("family", "")]).strip()
    if display:
        ref["display"] = display
    return ref, (system, value)
