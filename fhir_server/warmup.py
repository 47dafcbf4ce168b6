"""Load the large, long-lived data a worker needs before it takes traffic.

Definitions, validation models and compiled search expressions are built lazily on
first use. A gunicorn worker builds them once, at start, then moves every object it
holds into the garbage collector's permanent generation (``gc.freeze``): the
collector then stops re-scanning hundreds of thousands of objects that never die,
which otherwise costs a measurable share of every write.
"""

from __future__ import annotations

import gc

_SAMPLE = {"resourceType": "Patient", "name": [{"family": "Warm", "given": ["Up"]}], "gender": "unknown"}


def warm_up() -> None:
    from conformance.registry import resource_types, search_parameters
    from fhir_server.search.extract import index_resource
    from fhir_server.search.request import supported_parameters
    from fhir_server.services.summary import apply_summary
    from fhir_server.services.validation import validate_resource

    search_parameters()
    for resource_type in ("Patient", "Observation", "Encounter", "Condition", "MedicationRequest"):
        supported_parameters(resource_type)
    resource_types()
    validate_resource(_SAMPLE)
    index_resource("Patient", _SAMPLE)
    apply_summary({**_SAMPLE, "id": "x"}, "true")
    gc.collect()
    gc.freeze()
