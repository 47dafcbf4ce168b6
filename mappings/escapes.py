"""HL7 v2 escape sequences, decoded when a value is read (never while tokenizing).

Decoding after splitting is what makes ``\\F\\`` a literal ``|`` inside a value rather than a
field break. Known sequences: ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\P\\`` (the delimiters),
``\\Xhhhh..\\`` (bytes in the message's character set), ``\\.br\\`` and ``\\.sp\\``/``\\.spN\\``
(line breaks), ``\\H\\``/``\\N\\`` (highlighting on/off: no plain-text meaning, dropped).
Anything else (``\\Zxx\\``, ``\\Cxxyy\\``, other formatting commands) and an unterminated escape
are kept verbatim, so nothing a sender wrote is silently lost.
"""

from __future__ import annotations

import re

from mappings.charsets import decode

_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_SPACE = re.compile(r"\.sp(\d*)")


class Escapes:
    """The escape rules of one message: its delimiters and its character set."""

    __slots__ = ("codec", "escape", "table")

    def __init__(self, field: str, encoding: str, codec: str) -> None:
        self.codec = codec
        self.escape = encoding[2] if len(encoding) > 2 else ""
        names = ("S", "R", "E", "T", "P")
        self.table = {"F": field, "H": "", "N": ""}
        for name, char in zip(names, encoding, strict=False):
            self.table[name] = char

    def decode(self, text: str) -> str:
        """``text`` with every known escape sequence replaced by what it stands for."""
        esc = self.escape
        if not esc or esc not in text:
            return text
        out: list[str] = []
        i = 0
        n = len(text)
        while i < n:
            start = text.find(esc, i)
            if start < 0:
                out.append(text[i:])
                break
            out.append(text[i:start])
            end = text.find(esc, start + 1)
            if end < 0:
                out.append(text[start:])
                break
            sequence = text[start + 1 : end]
            replacement = self._sequence(sequence)
            out.append(text[start : end + 1] if replacement is None else replacement)
            i = end + 1
        return "".join(out)

    def _sequence(self, sequence: str) -> str | None:
        known = self.table.get(sequence)
        if known is not None:
            return known
        if sequence[:1] == "X" and _HEX.fullmatch(sequence, 1):
            return decode(bytes.fromhex(sequence[1:]), self.codec)
        if sequence == ".br":
            return "\n"
        spaces = _SPACE.fullmatch(sequence)
        if spaces:
            return "\n" * max(1, int(spaces.group(1) or 1))
        return None
