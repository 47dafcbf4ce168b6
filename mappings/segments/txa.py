"""TXA + OBX -> DocumentReference, identified by the unique document number (TXA-12)."""

from __future__ import annotations

from typing import Any

from mappings.codemaps import fhir_code
from mappings.context import Context
from mappings.datatypes.attachments import from_obx
from mappings.datatypes.codes import table_concept
from mappings.datatypes.identifiers import ei
from mappings.datatypes.people import practitioner
from mappings.datatypes.times import Where, date_time
from mappings.errors import REQUIRED_FIELD_MISSING, MappingError
from mappings.message import Segment


def document(
    ctx: Context,
    txa: Segment,
    content: list[Segment],
    patient_ref: dict[str, Any],
    encounter_ref: dict[str, Any] | None,
) -> None:
    """Add the DocumentReference of a TXA with the OBX segments that carry its content."""
    number = ei(txa.field(12), ctx.default_system)
    if number is None:
        raise MappingError(REQUIRED_FIELD_MISSING, "TXA-12 unique document number is missing", "TXA", 12)
    attachments = [a for s in content if (a := from_obx(s))]
    if not attachments:
        raise MappingError(REQUIRED_FIELD_MISSING, "the document has no content (OBX-5)", "OBX", 5)
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "masterIdentifier": number,
        "identifier": [number],
        "status": "entered-in-error" if txa.get(19) == "OB" else "current",
    }
    doc_status = fhir_code("document-status", txa.get(17))
    if doc_status:
        resource["docStatus"] = doc_status
    kind = table_concept(txa.get(2), "0270")
    if kind:
        resource["type"] = kind
    resource["subject"] = patient_ref
    when = txa.get(6) or txa.get(4)
    if len(when) >= 10:
        resource["date"] = date_time(when, ctx.zone, Where("TXA", 6 if txa.get(6) else 4), instant=True)
    authors = [r for f in txa.repetitions(9) if (r := practitioner(ctx, f))]
    if authors:
        resource["author"] = authors
    authenticator = next((r for f in txa.repetitions(22) if (r := practitioner(ctx, f))), None)
    if authenticator:
        resource["authenticator"] = authenticator
    resource["content"] = [{"attachment": a} for a in attachments]
    if encounter_ref:
        resource["context"] = {"encounter": [encounter_ref]}
    ctx.put(resource, number["system"], number["value"])
