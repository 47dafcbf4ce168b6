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

from conformance.registry import SearchParameterDef, implicit_code_systems, search_parameters
from fhir_server.search.fhirpath import CompiledExpression, UnsupportedExpression, compile_expression
from fhir_server.search.index import IndexEntries
from fhir_server.search.types import INDEXERS, reference, token

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
        if canonical_code(resource_type, code) != code:
            continue  # its values are indexed under the parameter it duplicates
        found.append((definition, compiled))
    return tuple(found)


@lru_cache(maxsize=512)
def _canonical_codes(resource_type: str) -> dict[str, str]:
    """Parameters of one type with the same type and expression index the same values
    (Patient ``name`` and ``phonetic``, for example): they share the first one's keys."""
    first: dict[tuple[str, str], str] = {}
    mapping: dict[str, str] = {}
    for code, definition in sorted(search_parameters().get(resource_type, {}).items()):
        if definition.type == "composite" or not definition.expression:
            continue
        mapping[code] = first.setdefault((definition.type, definition.expression), code)
    return mapping


@lru_cache(maxsize=4096)
def _implicit_system(compiled: CompiledExpression) -> str | None:
    """The code system of a plain path to a bound ``code`` element (``Patient.gender``):
    a token search may name it (``gender=http://hl7.org/fhir/administrative-gender|male``)."""
    if len(compiled.terms) != 1 or any(step.kind != "field" for step in compiled.terms[0].steps):
        return None
    term = compiled.terms[0]
    path = ".".join([term.root, *(step.name for step in term.steps)])
    return implicit_code_systems().get(path)


def canonical_code(resource_type: str, code: str) -> str:
    return _canonical_codes(resource_type).get(code, code)


def index_resource(resource_type: str, resource: dict[str, Any], *, base_url: str = "") -> IndexEntries:
    """``base_url``: this server's FHIR base, so absolute references to it index as local."""
    out = IndexEntries()
    selected: dict[int, list[Any]] = {}  # parameters often share an expression (by identity)
    for definition, compiled in indexed_parameters(resource_type):
        nodes = selected.get(id(compiled))
        if nodes is None:
            nodes = selected[id(compiled)] = compiled.evaluate(resource_type, resource)
        if not nodes:
            continue
        if definition.type == "reference":
            reference.index(definition.code, nodes, out, base_url=base_url)
        elif definition.type == "token":
            token.index(definition.code, nodes, out, implicit_system=_implicit_system(compiled))
        else:
            INDEXERS[definition.type](definition, resource_type, resource, nodes, out)
    return out
