"""Escape sequences: delimiters, hex, line breaks, highlighting; unknown ones kept verbatim."""

from __future__ import annotations

import pytest

from mappings.escapes import Escapes

STANDARD = Escapes("|", "^~\\&", "utf-8")


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("plain", "plain"),
        ("a\\F\\b", "a|b"),
        ("a\\S\\b\\T\\c\\R\\d\\E\\e", "a^b&c~d\\e"),
        ("\\X0D0A\\", "\r\n"),
        ("\\X48656c6c6f\\", "Hello"),
        ("\\XE282AC\\ 5", "€ 5"),
        ("one\\.br\\two", "one\ntwo"),
        ("one\\.sp\\two", "one\ntwo"),
        ("one\\.sp2\\two", "one\n\ntwo"),
        ("\\H\\bold\\N\\", "bold"),
        ("\\Zlocal\\", "\\Zlocal\\"),
        ("\\C2842\\x", "\\C2842\\x"),
        ("\\.ce\\centred", "\\.ce\\centred"),
        ("\\X0\\", "\\X0\\"),
        ("\\XZZ\\", "\\XZZ\\"),
        ("unterminated \\F", "unterminated \\F"),
        ("\\\\", "\\\\"),
        ("\\F\\\\S\\", "|^"),
    ],
)
def test_decode(raw: str, decoded: str) -> None:
    assert STANDARD.decode(raw) == decoded


def test_escape_character_comes_from_the_message() -> None:
    custom = Escapes("*", ":!%@#", "utf-8")
    assert custom.decode("a%F%b%S%c%T%d%R%e%E%f%P%") == "a*b:c@d!e%f#"
    assert custom.decode("a\\F\\b") == "a\\F\\b"


def test_hex_in_a_single_byte_charset() -> None:
    assert Escapes("|", "^~\\&", "iso8859-7").decode("\\XE1\\") == "\N{GREEK SMALL LETTER ALPHA}"
