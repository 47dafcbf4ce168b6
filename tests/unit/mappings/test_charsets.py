"""MSH-18 character sets: bytes decoded per the declared set, UTF-8 by default, never failing."""

from __future__ import annotations

import pytest

from mappings.charsets import charset_from_bytes, codec_for
from mappings.message import parse


def _msg(charset: str, name: bytes) -> bytes:
    header = f"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5||||||{charset}\r".encode("ascii")
    return header + b"PID|1||X||" + name + b"\r"


@pytest.mark.parametrize(
    ("charset", "encoded", "text"),
    [
        ("8859/1", "Müller^José".encode("iso8859-1"), "Müller"),
        ("ISO IR100", "Müller^José".encode("iso8859-1"), "Müller"),
        ("8859/2", "Dvořák^Zdeněk".encode("iso8859-2"), "Dvořák"),
        ("8859/5", "Иванов^Иван".encode("iso8859-5"), "Иванов"),
        ("8859/7", "Παπαδόπουλος^Γ".encode("iso8859-7"), "Παπαδόπουλος"),
        ("8859/9", "Yılmaz^Ş".encode("iso8859-9"), "Yılmaz"),  # noqa: RUF001
        ("UNICODE UTF-8", "Nguyễn^Ánh".encode(), "Nguyễn"),
        ("ISO IR192", "王^小明".encode(), "王"),
        ("", "Nguyễn^Ánh".encode(), "Nguyễn"),
        ("ASCII", b"Smith^John", "Smith"),
    ],
)
def test_names_decode_in_the_declared_charset(charset: str, encoded: bytes, text: str) -> None:
    msg = parse(_msg(charset, encoded))
    assert msg.get("PID-5") == text
    assert msg.charset == charset


def test_undecodable_utf8_bytes_fall_back_to_latin1() -> None:
    msg = parse(_msg("", "Müller".encode("iso8859-1") + " Ünal".encode()))
    assert msg.get("PID-5") == "Müller Ünal"


def test_ascii_with_high_bytes_does_not_fail() -> None:
    assert parse(_msg("ASCII", "Zoë".encode("iso8859-1"))).get("PID-5") == "Zoë"


def test_charset_repetitions_take_the_first() -> None:
    data = _msg("8859/1~ISO IR87", "Gödel".encode("iso8859-1"))
    assert charset_from_bytes(data) == "8859/1"
    assert parse(data).get("PID-5") == "Gödel"


def test_hex_escape_decodes_in_the_message_charset() -> None:
    latin = parse(_msg("8859/1", b"M\\XFC\\ller"))
    utf8 = parse(_msg("UNICODE UTF-8", b"M\\XC3BC\\ller"))
    assert latin.get("PID-5") == utf8.get("PID-5") == "Müller"


def test_text_input_reads_msh18_for_hex_escapes() -> None:
    text = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5||||||8859/1\rPID|1||X||M\\XFC\\ller"
    assert parse(text).get("PID-5") == "Müller"


def test_unknown_charset_defaults_to_utf8() -> None:
    assert codec_for("KLINGON") == "utf-8"
    assert codec_for(" 8859/1 ") == "iso8859-1"
    assert parse(_msg("KLINGON", "Ñandú".encode())).get("PID-5") == "Ñandú"


def test_charset_absent_in_short_header() -> None:
    assert charset_from_bytes(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rPID|1") == ""
    assert charset_from_bytes(b"MSH|") == ""
