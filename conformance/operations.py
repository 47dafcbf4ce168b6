"""OperationDefinitions of the operations this server implements (pure data).

The CapabilityStatement names each one (``rest.operation``) and the server serves them
at ``/fhir/OperationDefinition/{id}``.
"""

from __future__ import annotations

from typing import Any


def _in(name: str, type_: str, doc: str, *, min_: int = 0, max_: str = "1") -> dict[str, Any]:
    return {"name": name, "use": "in", "min": min_, "max": max_, "type": type_, "documentation": doc}


POPULATION_ANALYTICS: dict[str, Any] = {
    "resourceType": "OperationDefinition",
    "id": "population-analytics",
    "url": "urn:interop-server:OperationDefinition/population-analytics",
    "name": "PopulationAnalytics",
    "title": "Population analytics: incidence, lab distributions, treatment outcomes",
    "status": "active",
    "kind": "operation",
    "code": "population-analytics",
    "system": True,
    "type": False,
    "instance": False,
    "affectsState": False,
    "description": (
        "Computes over the current resources, for a period cut into week, month or year buckets: "
        "condition-incidence (first onset of a condition per patient, by age band at onset and sex), "
        "lab-distribution (count, mean, median, p10/p25/p75/p90, share out of reference range, per "
        "bucket and overall) and treatment-outcome (a lab value in a window before and after a "
        "patient's first matching medication, per-patient deltas and their summary). Answers a "
        "Parameters resource, or the same figures as plain JSON for charts with "
        "_format=application/json or Accept: application/json."
    ),
    "parameter": [
        _in("measure", "code", "condition-incidence | lab-distribution | treatment-outcome", min_=1),
        _in("start", "date", "First day of the period (inclusive)", min_=1),
        _in("end", "date", "Last day of the period (inclusive)", min_=1),
        _in("bucket", "code", "week | month (default) | year"),
        _in("code", "string", "system|code, or a bare code (LOINC for lab measures); comma = or", max_="*"),
        _in("system", "uri", "condition-incidence: every code of this code system", max_="*"),
        _in("valueSet", "canonical", "condition-incidence: codes of a ValueSet stored on this server"),
        _in("valueSetDefinition", "ValueSet", "condition-incidence (POST): an inline ValueSet"),
        _in("ageBands", "string", "Lower bounds of the age bands, e.g. 0,18,40,65 (the default)"),
        _in("unit", "code", "Lab measures: only values in this unit (default: the most common one)"),
        _in("medication", "string", "treatment-outcome: medication system|code; comma = or", max_="*"),
        _in("windowBefore", "integer", "treatment-outcome: days before the start for the baseline (180)"),
        _in("windowAfter", "integer", "treatment-outcome: days after the start for the follow-up (365)"),
        {
            "name": "return",
            "use": "out",
            "min": 1,
            "max": "1",
            "type": "Parameters",
            "documentation": "The figures; see README 'Population analytics' for their names",
        },
    ],
}

OPERATIONS: dict[str, dict[str, Any]] = {"population-analytics": POPULATION_ANALYTICS}
