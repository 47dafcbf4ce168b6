"""URI parameters: exact match; ``:below`` (prefix) and ``:above`` (the value starts with it)."""

from __future__ import annotations

from typing import Any

MODIFIERS = ("missing", "below", "above")


def matches(node: Any, value: str, modifier: str | None) -> bool:
    if not isinstance(node, str):
        return False
    if modifier == "below":
        return node.startswith(value)
    if modifier == "above":
        return value.startswith(node)
    return node == value


# -- index and query: key kind "u" holds the URI as written ------------------------------


def index(code: str, nodes: list[Any], out: Any) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.add_key(code, "u", node)
            out.sort_value(code, node)


def criterion(code: str, value: str, modifier: str | None) -> dict[str, Any]:
    import re

    from fhir_server.search.index import key

    if modifier == "below":
        return {"ix": {"$regex": "^" + re.escape(key(code, "u", value))}}
    if modifier == "above":
        # Every ancestor of the value along its path: http://a/b/c -> http://a/b/c, http://a/b, http://a
        head, _, path = value.partition("://")
        parts = path.split("/")
        ancestors = [f"{head}://{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)] if path else [value]
        return {"ix": {"$in": [key(code, "u", a) for a in ancestors]}}
    return {"ix": key(code, "u", value)}
