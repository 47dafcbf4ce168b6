"""String parameters: case- and accent-insensitive starts-with; ``:exact``; ``:contains``."""

from __future__ import annotations

import unicodedata
from typing import Any

MODIFIERS = ("missing", "exact", "contains")
_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


def normalize(text: str) -> str:
    if text.isascii():
        return text.lower()  # nothing to decompose; ASCII casefold is lower (the common case)
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


# -- index and query -------------------------------------------------------------------
# Key kinds: "s" normalised (case- and accent-folded) for the default starts-with and
# :contains, "e" exact for :exact.


def index(code: str, nodes: list[Any], out: Any) -> None:
    for node in nodes:
        for text in strings_of(node):
            folded = normalize(text)
            out.add_key(code, "s", folded)
            out.add_key(code, "e", text)
            out.sort_value(code, folded)


def criterion(code: str, value: str, modifier: str | None) -> dict[str, Any]:
    import re

    from fhir_server.search.index import key

    if modifier == "exact":
        return {"ix": key(code, "e", value)}
    prefix = re.escape(key(code, "s", ""))
    needle = re.escape(normalize(value))
    if modifier == "contains":
        # One unbounded gap between fixed literals: linear, no catastrophic backtracking.
        return {"ix": {"$regex": f"^{prefix}.*{needle}"}}
    return {"ix": {"$regex": f"^{prefix}{needle}"}}
