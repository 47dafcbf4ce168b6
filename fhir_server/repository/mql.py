"""Evaluate, in Python, the subset of the MongoDB query language our compiler emits.

FerretDB 1.24 rejects ``$elemMatch`` with field conditions, which range parameters
(date, number, quantity, composite) need so that the bounds of one index entry are
tested together. On such a store the repository fetches candidates with the rest of
the filter and applies the full filter here; on MongoDB the store evaluates it all.
Semantics follow MongoDB's: a path through arrays yields every element, a condition
holds if any element satisfies it, ``$ne``/``$nin``/``$nor`` negate the whole match.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

_MISSING = object()


def matches(query: dict[str, Any], doc: dict[str, Any]) -> bool:
    for key, condition in query.items():
        if key == "$and":
            if not all(matches(q, doc) for q in condition):
                return False
        elif key == "$or":
            if not any(matches(q, doc) for q in condition):
                return False
        elif key == "$nor":
            if any(matches(q, doc) for q in condition):
                return False
        elif not _field_matches(_values(doc, key.split(".")), condition):
            return False
    return True


def uses(query: Any, operator: str) -> bool:
    """Whether ``operator`` appears anywhere in a query."""
    if isinstance(query, dict):
        return any(k == operator or uses(v, operator) for k, v in query.items())
    if isinstance(query, list):
        return any(uses(item, operator) for item in query)
    return False


def without(query: dict[str, Any], operator: str) -> dict[str, Any]:
    """A looser query: top-level clauses that use ``operator`` dropped (a superset)."""
    if not uses(query, operator):
        return query
    if set(query) == {"$and"}:
        kept = [clause for clause in query["$and"] if not uses(clause, operator)]
        return {"$and": kept} if kept else {}
    return {k: v for k, v in query.items() if not k.startswith("$") and not uses(v, operator)}


MAX_ID_LOOKUPS = 100


def required_ids(query: dict[str, Any]) -> list[str] | None:
    """The ids a query can only match, when it names at most :data:`MAX_ID_LOOKUPS` of
    them at its top level (``{_id: x}``, ``{_id: {$in: [...]}}``, or such a clause in a
    top-level ``$and``); otherwise None."""
    clauses = query["$and"] if set(query) == {"$and"} else [query]
    for clause in clauses:
        condition = clause.get("_id", _MISSING) if isinstance(clause, dict) else _MISSING
        if isinstance(condition, str):
            return [condition]
        if (
            isinstance(condition, dict)
            and set(condition) == {"$in"}
            and len(condition["$in"]) <= MAX_ID_LOOKUPS
        ) and all(isinstance(v, str) for v in condition["$in"]):
            return list(condition["$in"])
    return None


def required_keys(query: dict[str, Any], eligible: Callable[[str], bool]) -> list[str] | None:
    """Index keys (that ``eligible`` accepts) of which a match must carry one: a top-level
    clause ``{ix: key}``, or an ``$or`` of such clauses (also inside a top-level
    ``$and``); otherwise None."""
    clauses = query["$and"] if set(query) == {"$and"} else [query]
    for clause in clauses:
        keys = _clause_keys(clause)
        if keys and all(eligible(k) for k in keys):
            return keys
    return None


def required_pairs(
    query: dict[str, Any], first: Callable[[str], bool], second: Callable[[str], bool], limit: int = 50
) -> list[tuple[str, str]] | None:
    """For a top-level ``$and`` holding a clause of keys ``first`` accepts and another of
    keys ``second`` accepts (each ``{ix: key}`` or an ``$or`` of them), every pair of
    alternatives, of which a match must carry one; None otherwise or beyond ``limit``."""
    if set(query) != {"$and"}:
        return None
    lefts = rights = None
    for clause in query["$and"]:
        keys = _clause_keys(clause)
        if keys and lefts is None and all(first(k) for k in keys):
            lefts = keys
        elif keys and rights is None and all(second(k) for k in keys):
            rights = keys
    if lefts is None or rights is None or len(lefts) * len(rights) > limit:
        return None
    return [(left, right) for left in lefts for right in rights]


def _clause_keys(clause: Any) -> list[str] | None:
    if not isinstance(clause, dict):
        return None
    alternatives = clause["$or"] if set(clause) == {"$or"} else [clause]
    keys = [a.get("ix") if isinstance(a, dict) and set(a) == {"ix"} else None for a in alternatives]
    return [str(k) for k in keys] if keys and all(isinstance(k, str) for k in keys) else None


def _values(node: Any, path: list[str]) -> list[Any]:
    """Every value at ``path``; arrays are both themselves and their elements."""
    if not path:
        if isinstance(node, list):
            return [node, *node]
        return [node]
    if isinstance(node, list):
        found: list[Any] = []
        for item in node:
            found.extend(_values(item, path))
        return found
    if isinstance(node, dict) and path[0] in node:
        return _values(node[path[0]], path[1:])
    return [_MISSING]


def _field_matches(values: list[Any], condition: Any) -> bool:
    if isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition):
        return all(_operator(op, arg, values) for op, arg in condition.items())
    return any(_equal(v, condition) for v in values)


def _operator(op: str, arg: Any, values: list[Any]) -> bool:
    present = [v for v in values if v is not _MISSING]
    if op == "$eq":
        return any(_equal(v, arg) for v in values)
    if op == "$ne":
        return not any(_equal(v, arg) for v in values)
    if op == "$in":
        return any(_equal(v, a) for v in values for a in arg)
    if op == "$nin":
        return not any(_equal(v, a) for v in values for a in arg)
    if op == "$exists":
        return bool(present) == bool(arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return any(_compare(v, op, arg) for v in present)
    if op == "$regex":
        pattern = _regex(arg)
        return any(isinstance(v, str) and pattern.search(v) for v in present)
    if op == "$not":
        return not _field_matches(values, arg)
    if op == "$elemMatch":
        arrays = [v for v in present if isinstance(v, list)]
        return any(_element_matches(item, arg) for array in arrays for item in array)
    raise ValueError(f"operator {op} is not supported by the Python evaluator")


def _element_matches(item: Any, condition: dict[str, Any]) -> bool:
    if isinstance(item, dict) and not all(k.startswith("$") for k in condition):
        return matches(condition, item)
    return all(_operator(op, arg, [item]) for op, arg in condition.items())


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _equal(value: Any, expected: Any) -> bool:
    if value is _MISSING:
        return expected is None
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    return bool(value == expected)


def _compare(value: Any, op: str, arg: Any) -> bool:
    if _kind(value) != _kind(arg):
        return False  # MongoDB compares only within a type bracket
    if op == "$gt":
        return bool(value > arg)
    if op == "$gte":
        return bool(value >= arg)
    if op == "$lt":
        return bool(value < arg)
    return bool(value <= arg)


def _kind(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        return 5
    if isinstance(value, int | float):
        return 1
    if isinstance(value, str):
        return 2
    if isinstance(value, dict):
        return 3
    if isinstance(value, list):
        return 4
    if isinstance(value, datetime):
        return 6
    return 7


def sort_documents(docs: list[dict[str, Any]], order: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Sort as MongoDB does: arrays by their smallest (ascending) or largest (descending)
    element, missing fields first in ascending order; stable across keys."""
    result = list(docs)
    for field, direction in reversed(order):
        descending = direction < 0

        def key(doc: dict[str, Any], field: str = field, descending: bool = descending) -> tuple[int, Any]:
            return _sort_value(doc, field, descending)

        result.sort(key=key, reverse=descending)
    return result


def _sort_value(doc: dict[str, Any], field: str, descending: bool) -> tuple[int, Any]:
    values = [v for v in _values(doc, field.split(".")) if v is not _MISSING and not isinstance(v, list)]
    if not values:
        return (0, 0)
    keyed = [(_kind(v), v) for v in values]
    return max(keyed) if descending else min(keyed)
