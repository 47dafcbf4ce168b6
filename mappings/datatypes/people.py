"""XCN (a person in a role: doctor, nurse, entering clerk) -> Practitioner and a Reference to it."""

from __future__ import annotations

from typing import Any

from mappings.context import Context
from mappings.datatypes.codes import table_concept
from mappings.datatypes.names import _compact
from mappings.ids import authority_system
from mappings.message import Field


def xcn_name(field: Field) -> dict[str, Any] | None:
    """The HumanName in an XCN (family XCN-2.1, given XCN-3/4, suffix 5/7, prefix 6)."""
    name = _compact(
        {
            "family": field.component(2, 1),
            "given": [g for g in (field.component(3), field.component(4)) if g],
            "prefix": [p for p in (field.component(6),) if p],
            "suffix": [s for s in (field.component(5), field.component(7)) if s],
        }
    )
    return name if ("family" in name or "given" in name) else None


def _display(name: dict[str, Any] | None, fallback: str) -> str:
    if not name:
        return fallback
    return " ".join([*name.get("prefix", []), *name.get("given", []), name.get("family", "")]).strip()


def practitioner(ctx: Context, field: Field) -> dict[str, Any] | None:
    """A Reference to the Practitioner an XCN names, added as a conditional create.

    Identified by XCN-1 with its assigning authority (XCN-9, else the sender's namespace);
    an XCN with a name but no id becomes a display-only Reference (no resource is created:
    a name alone cannot be matched safely).
    """
    if not field:
        return None
    value = field.component(1)
    name = xcn_name(field)
    if not value:
        return {"display": _display(name, "")} if name else None
    system = authority_system(field.component(9, 1), field.component(9, 2), field.component(9, 3))
    system = system or ctx.default_system
    identifier: dict[str, Any] = {"system": system, "value": value}
    kind = table_concept(field.component(13), "0203")
    if kind:
        identifier = {"type": kind} | identifier
    resource: dict[str, Any] = {"resourceType": "Practitioner", "identifier": [identifier]}
    if name:
        resource["name"] = [name]
    url = ctx.ensure(resource, system, value)
    ref: dict[str, Any] = {"reference": url}
    if name:
        ref["display"] = _display(name, value)
    return ref
