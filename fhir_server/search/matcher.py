"""Evaluate a SearchRequest against stored resources.

Semantics: comma-separated values are OR, repeated parameters are AND; ``:missing``
and ``:not`` apply to the whole resource, every other modifier to each selected node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.repository.base import StoredVersion
from fhir_server.search.fhirpath import compile_expression
from fhir_server.search.request import SearchParam, SearchRequest
from fhir_server.search.types import MATCHERS


@dataclass(frozen=True)
class ConditionalCriteria:
    """A parsed request ready to select resources (conditional ops and plain search)."""

    request: SearchRequest

    @property
    def resource_type(self) -> str:
        return self.request.resource_type

    def exact_id(self) -> str | None:
        """The id when the criteria are exactly one ``_id`` value (a direct lookup)."""
        params = self.request.params
        if len(params) == 1 and params[0].code == "_id" and not params[0].modifier:
            values = params[0].values
            return values[0] if len(values) == 1 else None
        return None

    def prefilter(self) -> dict[str, Any]:
        """A store filter that narrows candidates without changing the result."""
        return {}

    def matches(self, stored: StoredVersion) -> bool:
        resource = stored.resource
        if resource is None:
            return False
        return all(_param_matches(p, stored.resource_type, resource, stored.id) for p in self.request.params)


def _param_matches(param: SearchParam, resource_type: str, resource: dict[str, Any], id: str) -> bool:
    if param.code == "_id":
        if param.modifier == "missing":
            return param.values[0] == "false"
        return id in param.values
    nodes = compile_expression(param.definition.expression, param.definition.base).evaluate(
        resource_type, resource
    )
    if param.modifier == "missing":
        want_missing = param.values[0].lower() == "true"
        return (not nodes) == want_missing
    matcher = MATCHERS[param.definition.type]
    if param.modifier == "not":
        return not any(matcher(node, value, None) for node in nodes for value in param.values)
    return any(matcher(node, value, param.modifier) for node in nodes for value in param.values)
