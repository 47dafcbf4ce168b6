"""The typed search request and its parser (shared by REST, conditional ops, HL7, CDS)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from conformance.registry import SearchParameterDef, search_parameters
from fhir_server import outcomes
from fhir_server.search.chains import Chain, parse_chain
from fhir_server.search.escaping import split_unescaped
from fhir_server.search.fhirpath import UnsupportedExpression, compile_expression
from fhir_server.search.includes import Include, parse_include
from fhir_server.search.types import MODIFIERS, SUPPORTED_TYPES

# Result-shaping parameters: handled by paging and rendering, not by matching.
RESULT_PARAMETERS = frozenset(
    {
        "_count",
        "_offset",
        "_cursor",
        "_format",
        "_pretty",
        "_summary",
        "_elements",
        "_total",
        "_sort",
        "_include",
        "_revinclude",
    }
)
TOTAL_MODES = ("none", "estimate", "accurate")


@dataclass(frozen=True)
class SearchParam:
    """One criterion: ``code[:modifier]=v1,v2`` (comma = OR)."""

    definition: SearchParameterDef
    modifier: str | None
    values: tuple[str, ...]

    resource_type: str = ""

    @property
    def code(self) -> str:
        return self.definition.code

    def as_query(self) -> tuple[str, str]:
        name = f"{self.code}:{self.modifier}" if self.modifier else self.code
        return name, ",".join(v.replace("\\", "\\\\").replace(",", "\\,") for v in self.values)


@dataclass(frozen=True)
class SortKey:
    code: str
    descending: bool = False


@dataclass(frozen=True)
class SearchRequest:
    """All criteria (repetition = AND) plus result control, for one resource type."""

    resource_type: str
    params: tuple[SearchParam, ...] = ()
    count: int | None = None
    offset: int = 0
    sort: tuple[SortKey, ...] = ()
    total: str = "accurate"
    ignored: tuple[str, ...] = ()
    # Conditions added by the server, not the client (e.g. a compartment), already compiled.
    extra_filters: tuple[dict[str, Any], ...] = field(default=())
    includes: tuple[Include, ...] = ()
    include_params: tuple[tuple[str, str], ...] = ()
    chains: tuple[Chain, ...] = ()
    chain_params: tuple[tuple[str, str], ...] = ()
    cursor: str | None = None

    def criteria_pairs(self) -> list[tuple[str, str]]:
        """The applied criteria and result controls as query pairs (for self links)."""
        pairs = [p.as_query() for p in self.params]
        if self.sort:
            pairs.append(("_sort", ",".join(("-" if k.descending else "") + k.code for k in self.sort)))
        if self.total != "accurate":
            pairs.append(("_total", self.total))
        pairs.extend(self.chain_params)
        pairs.extend(self.include_params)
        return pairs


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
    sort: tuple[SortKey, ...] = ()
    total = "accurate"
    includes: list[Include] = []
    include_params: list[tuple[str, str]] = []
    chains: list[Chain] = []
    chain_params: list[tuple[str, str]] = []
    cursor: str | None = None
    for raw_name, raw_value in pairs:
        if raw_name.startswith("_has:") or ("." in raw_name and not raw_name.startswith("_")):
            if raw_value == "":
                raise outcomes.InvalidRequest(
                    f"Search parameter '{raw_name}' has no value", expression=raw_name
                )
            chains.append(parse_chain(resource_type, raw_name, raw_value))
            chain_params.append((raw_name, raw_value))
            continue
        name, _, modifier = raw_name.partition(":")
        if name in RESULT_PARAMETERS:
            if name == "_count":
                count = _non_negative(raw_name, raw_value)
            elif name == "_offset":
                offset = _non_negative(raw_name, raw_value)
            elif name == "_cursor":
                cursor = raw_value
            elif name == "_sort":
                sort = _sort_keys(resource_type, known, raw_value)
            elif name in ("_include", "_revinclude"):
                includes.append(parse_include(raw_name, raw_value))
                include_params.append((raw_name, raw_value))
            elif name == "_total":
                if raw_value not in TOTAL_MODES:
                    raise outcomes.InvalidRequest(
                        f"_total must be one of {', '.join(TOTAL_MODES)}", expression="_total"
                    )
                total = raw_value
            continue
        problem = _problem(resource_type, known, name, modifier or None)
        if problem:
            if strict:
                raise outcomes.UnknownParameter(problem, expression=raw_name)
            ignored.append(raw_name)
            continue
        if raw_value == "":
            raise outcomes.InvalidRequest(f"Search parameter '{raw_name}' has no value", expression=raw_name)
        params.append(
            SearchParam(known[name], modifier or None, tuple(_split_values(raw_value)), resource_type)
        )
    return SearchRequest(
        resource_type,
        tuple(params),
        count,
        offset,
        sort,
        total,
        tuple(ignored),
        includes=tuple(includes),
        include_params=tuple(include_params),
        chains=tuple(chains),
        chain_params=tuple(chain_params),
        cursor=cursor,
    )


def supported_parameters(resource_type: str) -> list[SearchParameterDef]:
    """The parameters of a type this engine answers exactly (feeds the CapabilityStatement)."""
    return [d for _, d in sorted(search_parameters().get(resource_type, {}).items()) if _evaluable(d)]


def _sort_keys(resource_type: str, known: dict[str, SearchParameterDef], raw: str) -> tuple[SortKey, ...]:
    keys = []
    for item in raw.split(","):
        item = item.strip()
        descending = item.startswith("-")
        code = item.lstrip("-")
        if code not in ("_id", "_lastUpdated") and (code not in known or not _evaluable(known[code])):
            raise outcomes.InvalidRequest(f"Cannot sort {resource_type} by '{code}'", expression="_sort")
        keys.append(SortKey(code, descending))
    return tuple(keys)


def _problem(
    resource_type: str, known: dict[str, SearchParameterDef], name: str, modifier: str | None
) -> str | None:
    definition = known.get(name)
    if definition is None:
        return f"Unknown search parameter '{name}' for {resource_type}"
    if not _evaluable(definition):
        return f"Search parameter '{name}' ({definition.type}) is not supported yet"
    type_modifier = definition.type == "reference" and modifier in definition.target
    allowed = ("missing", "not") if name == "_id" else MODIFIERS.get(definition.type, ())
    if modifier is not None and not type_modifier and modifier not in allowed:
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
    """Split a parameter's value list on unescaped commas; ``\\|`` stays escaped for
    the token split that may follow."""
    return split_unescaped(raw, ",", keep=frozenset("|"))
