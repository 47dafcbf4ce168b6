"""String parameters: case- and accent-insensitive starts-with; ``:exact``; ``:contains``."""

from __future__ import annotations

import unicodedata
from typing import Any

MODIFIERS = ("missing", "exact", "contains")
_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def strings_of(node: Any) -> list[str]:
    """The searchable strings of a node: itself, or the parts of a HumanName/Address."""
    if isinstance(node, str):
        return [node]
    if not isinstance(node, dict):
        return []
    found: list[str] = []
    for key in (*_NAME_PARTS, *_ADDRESS_PARTS):
        value = node.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                found.append(item)
    return found


def matches(node: Any, value: str, modifier: str | None) -> bool:
    candidates = strings_of(node)
    if modifier == "exact":
        return value in candidates
    needle = normalize(value)
    if modifier == "contains":
        return any(needle in normalize(c) for c in candidates)
    return any(normalize(c).startswith(needle) for c in candidates)
