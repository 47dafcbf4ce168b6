"""FHIR search escaping: ``\\,`` ``\\|`` ``\\$`` and ``\\\\`` stand for the literal characters."""

from __future__ import annotations


def split_unescaped(value: str, separator: str, *, keep: frozenset[str] = frozenset()) -> list[str]:
    """Split on ``separator`` where it is not escaped, and unescape the parts.

    Escapes of the characters in ``keep`` stay escaped, for a later split on them
    (a token value is split on ``|`` only after the list is split on ``,``).
    """
    parts: list[str] = []
    current: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, "")
            current.append("\\" + escaped if escaped in keep else escaped)
        elif ch == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts
