"""Build a resource's search index values from the official parameter definitions.

Called by the service for every version it writes, so the values land in the same
record as the resource. A parameter whose expression uses FHIRPath beyond the
supported subset, or whose type has no index module yet, is skipped here and refused
at query time (never answered from missing values).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from conformance.registry import SearchParameterDef, search_parameters
from fhir_server.search.fhirpath import CompiledExpression, UnsupportedExpression, compile_expression
from fhir_server.search.index import IndexEntries
from fhir_server.search.types import INDEXERS

Indexer = Callable[[str, list[Any], IndexEntries], None]


@lru_cache(maxsize=512)
def indexed_parameters(resource_type: str) -> tuple[tuple[SearchParameterDef, CompiledExpression], ...]:
    """The parameters of a type whose values are extracted at write time."""
    found = []
    for code, definition in sorted(search_parameters().get(resource_type, {}).items()):
        if code == "_id" or definition.type not in INDEXERS or not definition.expression:
            continue
        try:
            compiled = compile_expression(definition.expression, definition.base)
        except UnsupportedExpression:
            continue
        found.append((definition, compiled))
    return tuple(found)


def index_resource(resource_type: str, resource: dict[str, Any]) -> IndexEntries:
    out = IndexEntries()
    for definition, compiled in indexed_parameters(resource_type):
        nodes = compiled.evaluate(resource_type, resource)
        if nodes:
            INDEXERS[definition.type](definition, resource_type, resource, nodes, out)
    return out
