"""CX and EI -> Identifier, with systems from the assigning authority (see ``mappings.ids``)."""

from __future__ import annotations

from typing import Any

from mappings.datatypes.codes import table_concept
from mappings.datatypes.times import Where, date
from mappings.ids import authority_system
from mappings.message import Field


def cx_system(field: Field, default_system: str) -> str:
    """The system of a CX: from CX-4 (assigning authority), else the sender's namespace."""
    return (
        authority_system(field.component(4, 1), field.component(4, 2), field.component(4, 3))
        or default_system
    )


def cx(field: Field, default_system: str, where: Where) -> dict[str, Any] | None:
    """CX -> Identifier (value, system, type from table 0203, period from CX-7/8)."""
    value = field.component(1)
    if not value:
        return None
    ident: dict[str, Any] = {}
    kind = table_concept(field.component(5), "0203")
    if kind:
        ident["type"] = kind
    ident["system"] = cx_system(field, default_system)
    ident["value"] = value
    start, end = date(field.component(7), where), date(field.component(8), where)
    if start or end:
        ident["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    return ident


def ei_system(field: Field, default_system: str, first: int = 2) -> str:
    """The system of an EI (namespace, universal id, type at ``first``..``first + 2``)."""
    return (
        authority_system(field.component(first), field.component(first + 1), field.component(first + 2))
        or default_system
    )


def ei(field: Field, default_system: str) -> dict[str, Any] | None:
    """EI -> Identifier; ``None`` when EI-1 is empty."""
    value = field.component(1)
    if not value:
        return None
    return {"system": ei_system(field, default_system), "value": value}
