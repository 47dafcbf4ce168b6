"""Token parameters: ``code``, ``system|code``, ``|code`` and ``system|``.

Identifier (system/value), Coding (system/code), CodeableConcept (any coding),
ContactPoint (value) and primitive code/string/boolean/id values.
"""

from __future__ import annotations

from typing import Any

MODIFIERS = ("missing", "not", "text", "of-type")


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


# -- index and query -------------------------------------------------------------------
# Key kinds: "c" code (any system), "sc" system|code, "n" code without a system,
# "t" normalised text (for :text), "ot" identifier type-system|type-code|value (for
# :of-type). node_keys also yields "s" system for composites; the index does not store
# it, since "system|" is answered by an anchored prefix search on the "sc" keys.


def node_keys(node: Any) -> list[tuple[str, str]]:
    """The (kind, value) pairs under which a node can be found by a token search."""
    from fhir_server.search.types.string import normalize

    found: list[tuple[str, str]] = []
    for system, code, text in _pairs(node):
        if code is not None:
            found.append(("c", code))
            if system:
                found.append(("sc", f"{system}|{code}"))
            else:
                found.append(("n", code))
        if system:
            found.append(("s", system))
        if text:
            found.append(("t", normalize(text)))
    if isinstance(node, dict) and isinstance(node.get("type"), dict) and "value" in node:
        for coding in node["type"].get("coding") or []:
            if isinstance(coding, dict):
                found.append(("ot", f"{coding.get('system', '')}|{coding.get('code', '')}|{node['value']}"))
    return found


def index(code: str, nodes: list[Any], out: Any, implicit_system: str | None = None) -> None:
    """``implicit_system``: the code system of a bound ``code`` element, whose values
    carry no system of their own (search.html#token: "the system is defined in the
    value set")."""
    for node in nodes:
        if implicit_system and isinstance(node, str):
            out.add_key(code, "sc", f"{implicit_system}|{node}")
        for kind, value in node_keys(node):
            if kind == "s":
                continue  # ``system|`` is an anchored prefix search on the "sc" keys instead
            out.add_key(code, kind, value)
            if kind == "c":
                out.sort_value(code, value)


def search_keys(value: str) -> list[str]:
    """``kind\\x1fvalue`` keys a token search value asks for (before the parameter code)."""
    from fhir_server.search.index import SEP

    system, code = _split(value)
    if system is None:
        return [f"c{SEP}{code}"] if code else []
    if system == "":
        return [f"n{SEP}{code}"] if code else []
    if code is None:
        return [f"s{SEP}{system}"]
    return [f"sc{SEP}{system}|{code}"]


def criterion(code: str, value: str, modifier: str | None) -> dict[str, Any]:
    import re

    from fhir_server import outcomes
    from fhir_server.search.index import SEP, key
    from fhir_server.search.types.string import normalize

    if modifier == "text":
        return {"ix": {"$regex": "^" + re.escape(key(code, "t", normalize(value)))}}
    if modifier == "of-type":
        parts = value.split("|")
        if len(parts) != 3 or not all(parts):
            raise outcomes.InvalidRequest(
                f"{code}:of-type needs system|code|value, got '{value}'", expression=f"{code}:of-type"
            )
        return {"ix": key(code, "ot", value)}
    keys = [f"{code}{SEP}{k}" for k in search_keys(value)]
    if not keys:
        raise outcomes.InvalidRequest(f"'{value}' is not a valid token for {code}", expression=code)
    kind, _, system = keys[0][len(code) + 1 :].partition(SEP)
    if kind == "s":  # any code of a system: the "sc" keys that start with "system|"
        return {"ix": {"$regex": "^" + re.escape(key(code, "sc", system + "|"))}}
    return {"ix": keys[0]}
