"""The only translation from a SearchRequest to a MongoDB query.

Field names and operators come from this module; request values only ever appear as
string or number operands (regex operands are escaped), so no input can inject an
operator or reach another field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from fhir_server import outcomes
from fhir_server.search.extract import canonical_code
from fhir_server.search.index import SEP, present_pattern
from fhir_server.search.request import SearchParam, SearchRequest, SortKey
from fhir_server.search.types import CRITERIA

# Parameter types indexed as ranges in ``ir`` rather than keys in ``ix``.
RANGE_TYPES = frozenset({"date", "number", "quantity", "composite"})


@dataclass(frozen=True)
class CompiledQuery:
    filter: dict[str, Any]
    sort: list[tuple[str, int]]


def compile_search(request: SearchRequest, *, base_url: str = "") -> CompiledQuery:
    clauses = [compile_param(p, base_url=base_url) for p in request.params]
    clauses.extend(request.extra_filters)
    if not clauses:
        mongo_filter: dict[str, Any] = {}
    elif len(clauses) == 1:
        mongo_filter = clauses[0]
    else:
        mongo_filter = {"$and": clauses}
    return CompiledQuery(mongo_filter, compile_sort(request.sort, request.resource_type))


def compile_param(param: SearchParam, *, base_url: str = "") -> dict[str, Any]:
    shared = canonical_code(param.resource_type, param.code)
    if shared != param.code:
        param = replace(param, definition=replace(param.definition, code=shared))
    code, modifier, values = param.code, param.modifier, param.values
    if code == "_id":
        if modifier == "missing":
            return {} if values[0] == "false" else {"_id": {"$exists": False}}
        if modifier == "not":
            return {"_id": {"$nin": list(values)}}
        return {"_id": values[0]} if len(values) == 1 else {"_id": {"$in": list(values)}}
    if modifier == "missing":
        flag = values[0].lower()
        if flag not in ("true", "false"):
            raise outcomes.InvalidRequest(f"{code}:missing takes true or false", expression=f"{code}:missing")
        if param.definition.type in RANGE_TYPES:
            has_value: dict[str, Any] = {"ir.p": code}
        else:
            has_value = {"ix": {"$regex": present_pattern(code)}}
        # $nor rather than $ne: FerretDB 1.24 answers $ne on an array path if *any*
        # element differs, where MongoDB requires that none is equal.
        return {"$nor": [has_value]} if flag == "true" else has_value
    criterion = _criterion_for(param, base_url)
    if modifier == "not":
        return {"$nor": [criterion(v) for v in values]}
    conditions = [criterion(v) for v in values]
    return conditions[0] if len(conditions) == 1 else {"$or": conditions}


def _criterion_for(param: SearchParam, base_url: str) -> Callable[[str], dict[str, Any]]:
    build = CRITERIA.get(param.definition.type)
    if build is None:
        raise outcomes.UnknownParameter(
            f"Search parameter '{param.code}' is not supported", expression=param.code
        )
    modifier = None if param.modifier == "not" else param.modifier

    def criterion(value: str) -> dict[str, Any]:
        return build(param.definition, value, modifier, base_url)

    return criterion


def compile_sort(keys: tuple[SortKey, ...], resource_type: str = "") -> list[tuple[str, int]]:
    order: list[tuple[str, int]] = []
    for sort_key in keys:
        direction = -1 if sort_key.descending else 1
        if sort_key.code == "_id":
            order.append(("_id", direction))
        elif sort_key.code == "_lastUpdated":
            order.append(("lu", direction))
        else:
            # so.<code> is a value or [smallest, largest]: MongoDB sorts arrays ascending by
            # their smallest element and descending by their largest, as FHIR asks.
            order.append((f"so.{canonical_code(resource_type, sort_key.code)}", direction))
    if not any(f == "_id" for f, _ in order):
        order.append(("_id", 1))  # a total order, so pages never overlap or skip
    return order


__all__ = ["SEP", "CompiledQuery", "compile_param", "compile_search", "compile_sort"]
