"""Chained (``subject:Patient.name=x``) and reverse-chained (``_has:Observation:patient:code=y``)
parameters: parsed here, resolved by running the inner search first.

A chain becomes, once resolved, an ordinary condition on ids: the references that
point at the inner matches, or the ids that the inner matches point at. If an inner
search matches more than :data:`MAX_CHAIN_MATCHES` resources the request is refused
rather than answered from a truncated list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance.registry import SearchParameterDef, search_parameters
from fhir_server import outcomes
from fhir_server.search.includes import Include, referenced

MAX_CHAIN_MATCHES = 5000


@dataclass(frozen=True)
class Chain:
    """``reference[:Type].inner=value`` (forward) or ``_has:Type:reference:inner=value`` (reverse)."""

    reference: SearchParameterDef
    target_types: tuple[str, ...]
    inner_name: str
    value: str
    reverse: bool = False
    source_type: str = ""


def parse_chain(resource_type: str, name: str, value: str) -> Chain:
    known = search_parameters().get(resource_type, {})
    if name.startswith("_has:"):
        parts = name.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            raise outcomes.InvalidRequest(
                f"_has needs _has:Type:reference:parameter, got '{name}'", expression=name
            )
        _, source_type, ref_code, inner = parts
        source_params = search_parameters().get(source_type)
        if (
            source_params is None
            or ref_code not in source_params
            or source_params[ref_code].type != "reference"
        ):
            raise outcomes.InvalidRequest(
                f"'{source_type}:{ref_code}' is not a reference parameter", expression=name
            )
        return Chain(
            source_params[ref_code], (source_type,), inner, value, reverse=True, source_type=source_type
        )
    head, _, inner = name.partition(".")
    code, _, type_modifier = head.partition(":")
    definition = known.get(code)
    if definition is None or definition.type != "reference":
        raise outcomes.InvalidRequest(
            f"'{code}' is not a reference parameter of {resource_type}", expression=name
        )
    targets = (type_modifier,) if type_modifier else definition.target
    if type_modifier and type_modifier not in definition.target:
        raise outcomes.InvalidRequest(f"{code} cannot point at {type_modifier}", expression=name)
    inner_code = inner.split(".")[0].split(":")[0]
    targets = tuple(t for t in targets if inner_code in search_parameters().get(t, {}))
    if not targets:
        raise outcomes.InvalidRequest(f"No target of {code} has a parameter '{inner_code}'", expression=name)
    return Chain(definition, targets, inner, value)


Searcher = Callable[[str, list[tuple[str, str]], int], list[tuple[str, str, dict | None]]]


def resolve_chain(chain: Chain, resource_type: str, run: Searcher) -> tuple[str, tuple[str, ...]]:
    """Run the inner search; return (field, values) for an equality-or-in condition:
    ("ref", Type/id references) for a forward chain, ("_id", ids) for a reverse one."""
    if chain.reverse:
        matches = run(chain.source_type, [(chain.inner_name, chain.value)], MAX_CHAIN_MATCHES + 1)
        _too_many(matches, chain)
        include = Include(chain.source_type, (chain.reference,), resource_type, False, False)
        ids = {id for t, id, resource in matches for _, id in referenced(include, t, resource or {})}
        return "_id", tuple(sorted(ids))
    references: list[str] = []
    for target in chain.target_types:
        matches = run(target, [(chain.inner_name, chain.value)], MAX_CHAIN_MATCHES + 1)
        _too_many(matches, chain)
        references += [f"{t}/{id}" for t, id, _ in matches]
    return "ref", tuple(references)


def _too_many(matches: list[tuple[str, str, dict | None]], chain: Chain) -> None:
    if len(matches) > MAX_CHAIN_MATCHES:
        raise outcomes.InvalidRequest(
            f"The chained search on '{chain.inner_name}' matches more than "
            f"{MAX_CHAIN_MATCHES} resources; narrow it"
        )
