"""The typed search request and its parser (shared by REST, conditional ops, HL7, CDS)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from conformance.registry import SearchParameterDef, search_parameters
from fhir_server import outcomes
from fhir_server.search.fhirpath import UnsupportedExpression, compile_expression
from fhir_server.search.types import MODIFIERS, SUPPORTED_TYPES

# Result-shaping parameters handled by the bundle builder, not by matching.
CONTROL_PARAMETERS = frozenset({"_count", "_offset", "_format", "_pretty", "_summary", "_elements", "_total"})


@dataclass(frozen=True)
class SearchParam:
    """One criterion: ``code[:modifier]=v1,v2`` (comma = OR)."""

    definition: SearchParameterDef
    modifier: str | None
    values: tuple[str, ...]

    @property
    def code(self) -> str:
        return self.definition.code


@dataclass(frozen=True)
class SearchRequest:
    """All criteria (repetition = AND) plus paging for one resource type."""

    resource_type: str
    params: tuple[SearchParam, ...] = ()
    count: int | None = None
    offset: int = 0
    ignored: tuple[str, ...] = field(default=())

    def criteria_query(self) -> str:
        """The criteria as a canonical query string (for self links)."""
        parts = []
        for p in self.params:
            name = f"{p.code}:{p.modifier}" if p.modifier else p.code
            parts.append(f"{name}={','.join(p.values)}")
        return "&".join(parts)


def parse_query_string(resource_type: str, query: str, *, strict: bool = True) -> SearchRequest:
    return parse(resource_type, parse_qsl(query, keep_blank_values=True), strict=strict)


def parse(resource_type: str, pairs: Iterable[tuple[str, str]], *, strict: bool = True) -> SearchRequest:
    """Parse query pairs. Unknown or unsupported parameters raise under strict handling
    (always for conditional operations) and are reported as ignored otherwise."""
    known = search_parameters().get(resource_type, {})
    params: list[SearchParam] = []
    ignored: list[str] = []
    count: int | None = None
    offset = 0
    for raw_name, raw_value in pairs:
        name, _, modifier = raw_name.partition(":")
        if name in CONTROL_PARAMETERS:
            if name == "_count":
                count = _non_negative(raw_name, raw_value)
            elif name == "_offset":
                offset = _non_negative(raw_name, raw_value)
            continue
        problem = _problem(resource_type, known, name, modifier or None)
        if problem:
            if strict:
                raise outcomes.UnknownParameter(problem, expression=raw_name)
            ignored.append(raw_name)
            continue
        if raw_value == "":
            raise outcomes.InvalidRequest(f"Search parameter '{raw_name}' has no value", expression=raw_name)
        values = tuple(_split_values(raw_value))
        params.append(SearchParam(known[name], modifier or None, values))
    return SearchRequest(resource_type, tuple(params), count, offset, tuple(ignored))


def supported_parameters(resource_type: str) -> list[SearchParameterDef]:
    """The parameters of a type this engine evaluates exactly (feeds the CapabilityStatement)."""
    return [d for code, d in sorted(search_parameters().get(resource_type, {}).items()) if _evaluable(d)]


def _problem(
    resource_type: str, known: dict[str, SearchParameterDef], name: str, modifier: str | None
) -> str | None:
    definition = known.get(name)
    if definition is None:
        return f"Unknown search parameter '{name}' for {resource_type}"
    if not _evaluable(definition):
        return f"Search parameter '{name}' ({definition.type}) is not supported yet"
    type_modifier = definition.type == "reference" and modifier in definition.target
    if modifier is not None and not type_modifier and modifier not in MODIFIERS.get(definition.type, ()):
        return f"Modifier ':{modifier}' is not supported on '{name}' ({definition.type})"
    return None


def _evaluable(definition: SearchParameterDef) -> bool:
    if definition.code == "_id":
        return True
    if definition.type not in SUPPORTED_TYPES or not definition.expression:
        return False
    try:
        compile_expression(definition.expression, definition.base)
    except UnsupportedExpression:
        return False
    return True


def _non_negative(name: str, value: str) -> int:
    if not value.isdigit():
        raise outcomes.InvalidRequest(f"'{name}' must be a non-negative integer", expression=name)
    return int(value)


def _split_values(raw: str) -> list[str]:
    """Split on commas that are not escaped as ``\\,``; unescape ``\\,`` ``\\|`` ``\\$`` ``\\\\``."""
    values: list[str] = []
    current: list[str] = []
    chars = iter(raw)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            current.append("\\" + nxt if nxt == "|" else nxt)
        elif ch == ",":
            values.append("".join(current))
            current = []
        else:
            current.append(ch)
    values.append("".join(current))
    return values
