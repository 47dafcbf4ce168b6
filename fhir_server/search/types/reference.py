"""Reference parameters: ``id``, ``Type/id``, absolute URLs, and the ``:Type`` modifier."""

from __future__ import annotations

from typing import Any

from fhir_server.search.fhirpath import reference_type

MODIFIERS: tuple[str, ...] = ("missing",)


def _tail(reference: str) -> tuple[str | None, str]:
    parts = reference.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return None, parts[-1]


def matches(node: Any, value: str, modifier: str | None) -> bool:
    if isinstance(node, str):  # canonical references are matched as URIs
        return node == value
    if not isinstance(node, dict) or not isinstance(node.get("reference"), str):
        return False
    reference = node["reference"]
    if value.startswith(("http://", "https://")) and reference == value:
        return True
    wanted_type, wanted_id = _tail(value)
    if modifier and modifier not in MODIFIERS:
        wanted_type = modifier
    actual_type, actual_id = _tail(reference)
    if actual_id != wanted_id:
        return False
    return wanted_type is None or wanted_type == (actual_type or reference_type(node))
