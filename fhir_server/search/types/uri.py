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
