"""OBR -> DiagnosticReport: the lab's report of one order, with its results and specimens."""

from __future__ import annotations

from typing import Any

from mappings.codemaps import fhir_code
from mappings.context import Context
from mappings.datatypes.codes import codeable, table_concept
from mappings.datatypes.times import Where, date_time
from mappings.message import Segment


def report(
    ctx: Context,
    obr: Segment,
    ident: tuple[str, str],
    identifiers: list[dict[str, Any]],
    subject: dict[str, Any],
    encounter: dict[str, Any] | None,
    request: dict[str, Any] | None,
    results: list[dict[str, Any]],
    specimens: list[dict[str, Any]],
    forms: list[dict[str, Any]],
) -> None:
    """Add the DiagnosticReport of one OBR (conditional update on the order identity)."""
    code = codeable(obr.field(4))
    if code is None:
        return
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "identifier": identifiers or [{"system": ident[0], "value": ident[1]}],
    }
    if request:
        resource["basedOn"] = [request]
    resource["status"] = fhir_code("report-status", obr.get(25))
    section = table_concept(obr.get(24), "0074")
    if section:
        resource["category"] = [section]
    resource["code"] = code
    resource["subject"] = subject
    if encounter:
        resource["encounter"] = encounter
    effective = date_time(obr.get(7), ctx.zone, Where("OBR", 7))
    if effective:
        resource["effectiveDateTime"] = effective
    issued = (
        date_time(obr.get(22), ctx.zone, Where("OBR", 22), instant=True) if len(obr.get(22)) >= 12 else None
    )
    if issued:
        resource["issued"] = issued
    if specimens:
        resource["specimen"] = specimens
    if results:
        resource["result"] = results
    if forms:
        resource["presentedForm"] = forms
    ctx.put(resource, *ident)
