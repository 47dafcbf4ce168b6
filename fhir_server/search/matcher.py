"""A plain-Python evaluation of a SearchRequest against one resource.

It follows the spec's wording directly (comma = OR, repetition = AND, ``:missing``
and ``:not`` on the whole resource, other modifiers per value) and serves as the
reference the compiled MongoDB queries are tested against.
"""

from __future__ import annotations

from typing import Any

from fhir_server.search.fhirpath import compile_expression
from fhir_server.search.request import SearchParam, SearchRequest
from fhir_server.search.types import MATCHERS


def matches_request(request: SearchRequest, resource_type: str, resource: dict[str, Any]) -> bool:
    return all(_param_matches(p, resource_type, resource) for p in request.params)


def _param_matches(param: SearchParam, resource_type: str, resource: dict[str, Any]) -> bool:
    if param.code == "_id":
        if param.modifier == "missing":
            return param.values[0] == "false"
        found = resource.get("id") in param.values
        return not found if param.modifier == "not" else found
    nodes = compile_expression(param.definition.expression or "", param.definition.base).evaluate(
        resource_type, resource
    )
    if param.modifier == "missing":
        return (not nodes) == (param.values[0].lower() == "true")
    matcher = MATCHERS[param.definition.type]
    if param.modifier == "not":
        return not any(matcher(node, value, None) for node in nodes for value in param.values)
    return any(matcher(node, value, param.modifier) for node in nodes for value in param.values)
