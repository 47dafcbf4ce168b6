"""Token parameters: ``code``, ``system|code``, ``|code`` and ``system|``.

Identifier (system/value), Coding (system/code), CodeableConcept (any coding),
ContactPoint (value) and primitive code/string/boolean/id values.
"""

from __future__ import annotations

from typing import Any

MODIFIERS = ("missing", "not", "text")


def _split(value: str) -> tuple[str | None, str | None]:
    """``system|code`` -> (system, code); ``code`` -> (None, code); ``|code`` -> ("", code)."""
    index = _unescaped_bar(value)
    if index < 0:
        return None, value.replace("\\|", "|")
    system, code = value[:index], value[index + 1 :]
    return system.replace("\\|", "|"), (code.replace("\\|", "|") or None)


def _unescaped_bar(value: str) -> int:
    for i, ch in enumerate(value):
        if ch == "|" and (i == 0 or value[i - 1] != "\\"):
            return i
    return -1


def _pairs(node: Any) -> list[tuple[str | None, str | None, str | None]]:
    """(system, code, display-text) pairs a node offers for matching."""
    if isinstance(node, bool):
        return [(None, "true" if node else "false", None)]
    if isinstance(node, str | int | float):
        return [(None, str(node), None)]
    if not isinstance(node, dict):
        return []
    if "coding" in node or ("text" in node and "code" not in node and "value" not in node):
        pairs = [p for coding in node.get("coding") or [] for p in _pairs(coding)]
        if node.get("text"):
            pairs.append((None, None, node["text"]))
        return pairs
    if "code" in node:  # Coding
        return [(node.get("system"), node.get("code"), node.get("display"))]
    if "value" in node:  # Identifier, ContactPoint
        text = (node.get("type") or {}).get("text") if isinstance(node.get("type"), dict) else None
        return [(node.get("system"), str(node["value"]), text)]
    return []


def matches(node: Any, value: str, modifier: str | None) -> bool:
    if modifier == "text":
        needle = value.casefold()
        return any(text and needle in text.casefold() for _, _, text in _pairs(node))
    system, code = _split(value)
    for node_system, node_code, _ in _pairs(node):
        if system is not None and system != "" and node_system != system:
            continue
        if system == "" and node_system:
            continue
        if code is not None and node_code != code:
            continue
        if node_code is None and code is not None:
            continue
        return True
    return False
