"""Composite parameters: ``a$b`` (``a$b$c``), each part searched as its component's type.

R4 composites (conformance.registry) are a token first component - a reference for
DocumentReference ``relationship`` - and then token, string, date, quantity or number
components (MolecularSequence has three: token, number, number).

Index: for each node the composite's expression selects, one range entry per combination
of the component values (components 2.. each evaluated relative to the node; ``%resource``
means the resource), with fields per component ``i`` (1-based):

* token or reference: ``k`` (i = 1) or ``k{i}``, the list of ``kind\\x1fvalue`` keys of the
  token/reference module (``c`` code, ``sc`` system|code, ``s`` system, ``n`` code without
  a system; ``r`` Type/id, ``i`` id, ``u`` url);
* string: ``k``/``k{i}``, one normalised string (one entry per string, so a prefix range
  on it is tested on a single value);
* date, number, quantity: ``lo``/``hi`` (+ ``s``/``c``/``u``) for i = 2, ``lo3``/``hi3``...
  for i = 3 (``lo1``... if ever first).

Search: one ``$elemMatch`` on ``p`` and every component's condition, so all parts must hold
for the same combination (e.g. the same Observation.component). A range part may carry a
prefix; ``ne`` there means "this combination's value is not eq" (the negation is inside
the ``$elemMatch``, unlike a plain ``ne``, which asks that no value be eq).

The R4 ``DocumentReference-relationship`` definition gives its components each other's
expressions (``relatesto`` a reference on ``code``, ``relation`` a token on ``target``);
they are used swapped, as R5 corrected them: ``relationship=DocumentReference/1$replaces``.
"""

from __future__ import annotations

from datetime import datetime
from itertools import product
from typing import Any

from conformance.registry import SearchParameterDef, split_union
from fhir_server import outcomes
from fhir_server.search.fhirpath import UnsupportedExpression, compile_expression
from fhir_server.search.index import SEP, IndexEntries
from fhir_server.search.types import date, number, quantity, reference, string, token
from fhir_server.search.types.number import Condition, merge, reject_modifier

MODIFIERS: tuple[str, ...] = ()

_KEYED = ("token", "reference", "string")
_RANGED = ("date", "number", "quantity")
_TOKEN_KINDS = frozenset({"c", "sc", "s", "n"})
_NODE_ROOT = "CompositeNode"  # synthetic root for expressions relative to a node
_SWAPPED = frozenset({"http://hl7.org/fhir/SearchParameter/DocumentReference-relationship"})


# -- definitions -------------------------------------------------------------------------


def _components(
    definition: SearchParameterDef, component_defs: dict[str, SearchParameterDef]
) -> list[tuple[SearchParameterDef, str]]:
    """(component definition, relative expression) in order; refuses what we cannot search."""
    found: list[tuple[SearchParameterDef, str]] = []
    for component in definition.components:
        component_def = component_defs.get(component.definition)
        if component_def is None:
            raise UnsupportedExpression(f"{definition.code}: unknown component {component.definition}")
        if component_def.type not in _KEYED + _RANGED:
            raise UnsupportedExpression(f"{definition.code}: component type {component_def.type}")
        found.append((component_def, component.expression))
    if definition.url in _SWAPPED and len(found) == 2:
        (first, first_expr), (second, second_expr) = found
        found = [(first, second_expr), (second, first_expr)]
    if len(found) < 2:
        raise UnsupportedExpression(f"{definition.code}: a composite needs two or more components")
    return found


def _field(kind: str, position: int) -> str:
    if kind in _KEYED:
        return "k" if position == 1 else f"k{position}"
    return "" if position == 2 else str(position)


def _relative(expression: str, resource_type: str, resource: dict[str, Any], node: Any) -> list[Any]:
    found: list[Any] = []
    for term in split_union(expression):
        if term.startswith("%resource."):
            path = f"{resource_type}.{term[len('%resource.') :]}"
            found.extend(compile_expression(path).evaluate(resource_type, resource))
        else:
            found.extend(compile_expression(f"{_NODE_ROOT}.{term}").evaluate(_NODE_ROOT, node))
    return found


# -- index -------------------------------------------------------------------------------


def _token_keys(nodes: list[Any]) -> list[list[str]]:
    keys = sorted({f"{k}{SEP}{v}" for node in nodes for k, v in token.node_keys(node) if k in _TOKEN_KINDS})
    return [keys] if keys else []


def _reference_keys(nodes: list[Any]) -> list[list[str]]:
    scratch = IndexEntries()
    reference.index("", nodes, scratch)
    keys = sorted(k[len(SEP) :] for k in scratch.keys)
    return [keys] if keys else []


def _component_values(kind: str, position: int, nodes: list[Any]) -> list[dict[str, Any]]:
    """The alternatives one component contributes to an entry (one dict per value)."""
    if kind == "token":
        return [{_field(kind, position): keys} for keys in _token_keys(nodes)]
    if kind == "reference":
        return [{_field(kind, position): keys} for keys in _reference_keys(nodes)]
    if kind == "string":
        folded = sorted({string.normalize(s) for node in nodes for s in string.strings_of(node)})
        return [{_field(kind, position): s} for s in folded]
    suffix = _field(kind, position)
    values: list[dict[str, Any]] = []
    for node in nodes:
        entry: dict[str, Any] | None
        if kind == "date":
            found = date.node_range(node)
            entry = None if found is None else {"lo": found[0], "hi": found[1]}
        elif kind == "number":
            value = number.value_of(node)
            entry = None if value is None else {"lo": value, "hi": value}
        else:
            entry = quantity.node_entry(node)
        if entry is not None:
            values.append({name + suffix: v for name, v in entry.items()})
    return values


def index_composite(
    definition: SearchParameterDef,
    resource_type: str,
    resource: dict[str, Any],
    out: IndexEntries,
    component_defs: dict[str, SearchParameterDef],
    *,
    nodes: list[Any] | None = None,
) -> None:
    """Add one range entry per combination of component values of every selected node.

    ``nodes``: what the composite's own expression selects, if the caller has evaluated it.
    """
    if nodes is None:
        if not definition.expression:
            return
        nodes = compile_expression(definition.expression).evaluate(resource_type, resource)
    components = _components(definition, component_defs)
    code = definition.code
    for node in nodes:
        alternatives = [
            _component_values(component.type, position, _relative(expr, resource_type, resource, node))
            for position, (component, expr) in enumerate(components, start=1)
        ]
        for combination in product(*alternatives):
            entry: dict[str, Any] = {"p": code}
            for part in combination:
                entry.update(part)
            if "lo" in entry:
                lo, hi = entry.pop("lo"), entry.pop("hi")
                del entry["p"]
                out.add_range(code, lo, hi, **entry)
            elif entry not in out.ranges:
                out.ranges.append(entry)


# -- search ------------------------------------------------------------------------------


def _split_dollars(value: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] == "$":
            current.append("$")
            i += 2
            continue
        if ch == "$":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _after(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return _after(prefix[:-1]) if len(prefix) > 1 else prefix + "\U0010ffff"
    following = 0xE000 if 0xD800 <= last + 1 <= 0xDFFF else last + 1
    return prefix[:-1] + chr(following)


def _keyed_condition(kind: str, field: str, value: str, name: str) -> Condition:
    if kind == "token":
        keys = token.search_keys(value)
        if not keys:
            raise outcomes.InvalidRequest(f"'{value}' is not a valid token for {name}", expression=name)
        return {field: keys[0]}
    if kind == "reference":
        found = reference.criterion("", value, None).get("ix")
        if not isinstance(found, str) or not value:
            raise outcomes.InvalidRequest(f"'{value}' is not a valid reference for {name}", expression=name)
        return {field: found[len(SEP) :]}
    folded = string.normalize(value)
    if not folded:
        raise outcomes.InvalidRequest(f"An empty string cannot be searched in {name}", expression=name)
    return {field: {"$gte": folded, "$lt": _after(folded)}}


def _part_condition(kind: str, position: int, value: str, name: str, now: datetime | None) -> Condition:
    field = _field(kind, position)
    if kind in _KEYED:
        return _keyed_condition(kind, field, value, name)
    if kind == "date":
        return date.entry_condition(value, name, field, now=now)
    if kind == "number":
        return number.entry_condition(value, name, field)
    return quantity.entry_condition(value, name, field)


def criterion_composite(
    definition: SearchParameterDef,
    value: str,
    modifier: str | None,
    component_defs: dict[str, SearchParameterDef],
    *,
    now: datetime | None = None,
) -> Condition:
    """One ``$elemMatch`` that every part of ``value`` holds for (``now`` is for ``ap``)."""
    code = definition.code
    reject_modifier("composite", code, modifier)
    components = _components(definition, component_defs)
    parts = _split_dollars(value)
    if len(parts) != len(components):
        raise outcomes.InvalidRequest(
            f"'{value}' needs {len(components)} parts separated by '$' for {code}", expression=code
        )
    conditions = [
        _part_condition(component.type, position, part, code, now)
        for position, ((component, _), part) in enumerate(zip(components, parts, strict=True), start=1)
    ]
    return {"ir": {"$elemMatch": merge({"p": code}, *conditions)}}
