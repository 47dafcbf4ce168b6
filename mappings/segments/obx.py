"""OBX -> Observation: the value by OBX-2 value type, units as UCUM, flags, ranges, codes kept."""

from __future__ import annotations

from typing import Any

from mappings.codemaps import fhir_code, load
from mappings.context import Context
from mappings.datatypes.codes import codeable, coding_system
from mappings.datatypes.people import practitioner
from mappings.datatypes.quantities import number, quantity, reference_range, structured_numeric, unit
from mappings.datatypes.times import Where, date, date_time, time
from mappings.errors import DATA_TYPE_ERROR
from mappings.message import Segment

_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_LOINC = "http://loinc.org"
_TEXT_TYPES = frozenset({"ST", "TX", "FT"})


def code(obx: Segment) -> tuple[dict[str, Any], bool]:
    """OBX-3 as a CodeableConcept (an MDC code also gets its LOINC twin) and whether it is a vital sign."""
    concept = codeable(obx.field(3)) or {"text": "unknown"}
    vitals = load("vital-signs")
    codings = concept.get("coding", [])
    loinc = {c["code"] for c in codings if c.get("system") == _LOINC}
    if not loinc:
        for c in list(codings):
            twin = vitals["mdc"].get(c["code"]) if c.get("system") == coding_system("MDC") else None
            if twin:
                codings.append({"system": _LOINC, "code": twin[0], "display": twin[1]})
                loinc.add(twin[0])
                break
    return concept, bool(loinc & set(vitals["loinc"]))


def value(obx: Segment, where: Where, zone: Any) -> tuple[str, Any] | None:
    """(``value[x]`` element name, value) by OBX-2; ``None`` when there is no value (or ED, which
    has no Observation value type in R4 and is carried by the report or document instead).
    """
    kind = obx.get(2)
    reps = [f for f in obx.repetitions(5) if f]
    if not reps:
        return None
    first = reps[0]
    units = unit(obx.field(6))
    if kind == "NM":
        n = number(first.component(1))
        if n is None:
            raise where.error(f"OBX-5 is not a number: {first.component(1)!r}", DATA_TYPE_ERROR)
        return "valueQuantity", quantity(n, units)
    if kind == "SN":
        found = structured_numeric(first, units)
        return found if found else ("valueString", first.text)
    if kind in ("CE", "CWE", "CNE", "CF"):
        concepts = [c for f in reps if (c := codeable(f))]
        return ("valueCodeableConcept", concepts[0]) if concepts else None
    if kind in ("DT",):
        return "valueDateTime", date(first.component(1), where)
    if kind in ("TS", "DTM"):
        return "valueDateTime", date_time(first.component(1), zone, where)
    if kind == "TM":
        return "valueTime", time(first.component(1), where)
    if kind in _TEXT_TYPES or kind == "":
        return "valueString", "\n".join(f.text for f in reps)
    if kind == "ED":
        return None
    return "valueString", "\n".join(f.text for f in reps)


def observation(
    ctx: Context,
    obx: Segment,
    ident: tuple[str, str],
    subject: dict[str, Any],
    encounter: dict[str, Any] | None,
    notes: list[dict[str, Any]],
    default_time: str = "",
) -> dict[str, Any] | None:
    """Add the Observation of one OBX under ``ident``; its Reference (``None`` for ED values)."""
    where = Where("OBX", 5)
    if obx.get(2) == "ED":
        return None
    concept, vital = code(obx)
    status = fhir_code("observation-status", obx.get(11))
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": ident[0], "value": ident[1]}],
        "status": status,
        "category": [
            {
                "coding": [
                    {"system": _CATEGORY, "code": "vital-signs", "display": "Vital Signs"}
                    if vital
                    else {"system": _CATEGORY, "code": "laboratory", "display": "Laboratory"}
                ]
            }
        ],
        "code": concept,
        "subject": subject,
    }
    if encounter:
        resource["encounter"] = encounter
    effective = date_time(obx.get(14) or default_time, ctx.zone, Where("OBX", 14))
    if effective:
        resource["effectiveDateTime"] = effective
    found = value(obx, where, ctx.zone)
    if found and found[1] is not None:
        resource[found[0]] = found[1]
    elif obx.get(11) not in ("X", "D", "W"):
        resource["dataAbsentReason"] = {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}
            ]
        }
    flags = [fhir_code("interpretation", f.component(1)) for f in obx.repetitions(8) if f]
    flags = [f for f in flags if f]
    if flags:
        resource["interpretation"] = [{"coding": [{"system": _INTERPRETATION, "code": f}]} for f in flags]
    ranges = reference_range(obx.get(7), unit(obx.field(6)))
    if ranges:
        resource["referenceRange"] = [ranges]
    performers = [r for f in obx.repetitions(16) if (r := practitioner(ctx, f))]
    if performers:
        resource["performer"] = performers
    method = codeable(obx.field(17))
    if method:
        resource["method"] = method
    if notes:
        resource["note"] = notes
    url = ctx.put(resource, *ident)
    return {"reference": url}
