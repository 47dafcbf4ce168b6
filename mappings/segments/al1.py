"""AL1 -> AllergyIntolerance, identified by the patient and the allergen code."""

from __future__ import annotations

from typing import Any

from mappings.codemaps import fhir_code
from mappings.context import Context
from mappings.datatypes.codes import codeable
from mappings.datatypes.times import Where, date
from mappings.message import Segment

_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"


def allergy(ctx: Context, al1: Segment, patient_ref: dict[str, Any], patient: tuple[str, str]) -> None:
    """Add the AllergyIntolerance of one AL1 (conditional update on ``<patient id>/AL1/<allergen>``)."""
    code = codeable(al1.field(3))
    if code is None:
        return
    allergen = al1.get(3) or al1.get(3, component=2)
    system, value = patient[0], f"{patient[1]}/AL1/{allergen}"
    kind = al1.get(2)
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "identifier": [{"system": system, "value": value}],
        "clinicalStatus": {"coding": [{"system": _CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": _VERIFICATION, "code": "confirmed"}]},
    }
    if kind and fhir_code("allergy-type", kind):
        resource["type"] = fhir_code("allergy-type", kind)
    if kind and fhir_code("allergy-category", kind):
        resource["category"] = [fhir_code("allergy-category", kind)]
    severity = al1.get(4)
    if severity and fhir_code("allergy-criticality", severity):
        resource["criticality"] = fhir_code("allergy-criticality", severity)
    resource["code"] = code
    resource["patient"] = patient_ref
    onset = date(al1.get(6), Where("AL1", 6))
    if onset:
        resource["onsetDateTime"] = onset
    reactions = [{"text": f.text} for f in al1.repetitions(5) if f]
    if reactions:
        reaction: dict[str, Any] = {"manifestation": reactions}
        if severity in ("MI", "MO", "SV"):
            reaction["severity"] = {"MI": "mild", "MO": "moderate", "SV": "severe"}[severity]
        resource["reaction"] = [reaction]
    ctx.put(resource, system, value)
