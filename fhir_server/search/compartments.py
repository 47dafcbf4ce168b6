"""Compartment search: ``/fhir/Patient/{id}/{type}`` is a search of ``type`` restricted
to the resources the official CompartmentDefinition links to that patient."""

from __future__ import annotations

from typing import Any

from conformance.registry import patient_compartment, search_parameters
from fhir_server import outcomes
from fhir_server.search.compiler import compile_param
from fhir_server.search.request import SearchParam


def compartment_filter(compartment: str, id: str, resource_type: str) -> dict[str, Any]:
    """A compiled condition selecting the members of one compartment of one type."""
    if compartment != "Patient":
        raise outcomes.NotFound(f"The {compartment} compartment is not supported; only Patient is")
    params = patient_compartment().get(resource_type, ())
    known = search_parameters().get(resource_type, {})
    clauses = [
        compile_param(SearchParam(known[code], None, (f"Patient/{id}",), resource_type))
        for code in params
        if code in known and known[code].type == "reference"
    ]
    if resource_type == "Patient":
        clauses.append({"_id": id})  # a patient is in its own compartment
    if not clauses:
        raise outcomes.InvalidRequest(f"{resource_type} is not part of the Patient compartment")
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def any_patient_filter(resource_type: str) -> dict[str, Any]:
    """Resources of a type in the compartment of some patient (Bulk Data ``Patient/$export``):
    a compartment parameter referencing any ``Patient/...``, an anchored prefix on its keys."""
    import re

    from fhir_server.search.extract import canonical_code
    from fhir_server.search.index import key

    if resource_type == "Patient":
        return {}
    params = patient_compartment().get(resource_type, ())
    known = search_parameters().get(resource_type, {})
    clauses: list[dict[str, Any]] = [
        {"ix": {"$regex": "^" + re.escape(key(canonical_code(resource_type, code), "r", "Patient/"))}}
        for code in params
        if code in known and known[code].type == "reference"
    ]
    if not clauses:
        raise outcomes.InvalidRequest(f"{resource_type} is not part of the Patient compartment")
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}
