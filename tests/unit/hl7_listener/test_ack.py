"""ACK/NAK contents, field by field, from the received MSH."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hl7_listener import ack
from hl7_listener.ack import ErrorDetail, Header, Outcome

MSH = "MSH|^~\\&|LAB|HOSP^1.2.3^ISO|EHR|MAIN|20240101120000||ORU^R01^ORU_R01|MSG00042|P|2.5.1"
NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def header_of(msh: str) -> Header:
    fields = msh.split("|")
    return Header.from_fields(["MSH", "|", *fields[1:]])


def segments(text: str) -> dict[str, list[list[str]]]:
    assert text.endswith("\r")
    out: dict[str, list[list[str]]] = {}
    for line in text[:-1].split("\r"):
        fields = line.split("|")
        if fields[0] == "MSH":
            fields = ["MSH", "|", *fields[1:]]
        out.setdefault(fields[0], []).append(fields)
    return out


def test_positive_ack_swaps_parties_and_echoes_the_header() -> None:
    text = ack.build(header_of(MSH), "AA", now=NOW, control_id="ACK1")
    segs = segments(text)
    msh = segs["MSH"][0]
    assert msh[2] == "^~\\&"
    assert (msh[3], msh[4], msh[5], msh[6]) == ("EHR", "MAIN", "LAB", "HOSP^1.2.3^ISO")
    assert msh[7] == "20240506070809+0000"
    assert msh[9] == "ACK^R01^ACK"
    assert msh[10] == "ACK1"
    assert msh[11] == "P"
    assert msh[12] == "2.5.1"
    assert segs["MSA"] == [["MSA", "AA", "MSG00042"]]
    assert "ERR" not in segs


def test_new_control_ids_are_unique_and_fit_msh10() -> None:
    ids = {ack.new_control_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert max(len(i) for i in ids) <= 20


def test_error_ack_has_err_with_code_location_and_severity() -> None:
    error = ErrorDetail(101, "PID-3 is required", segment="PID", sequence=1, field=3)
    segs = segments(ack.build(header_of(MSH), "AE", [error], now=NOW))
    assert segs["MSA"][0][1:3] == ["AE", "MSG00042"]
    assert segs["MSA"][0][3] == "PID-3 is required"
    err = segs["ERR"][0]
    assert err[1] == ""  # ERR-1 only for versions before 2.5
    assert err[2] == "PID^1^3"
    assert err[3] == "101^Required field missing^HL70357"
    assert err[4] == "E"
    assert err[8] == "PID-3 is required"


def test_pre_25_versions_also_get_err1() -> None:
    msh = MSH.replace("|2.5.1", "|2.3")
    error = ErrorDetail(207, "boom", segment="MSH", sequence=1, field=10)
    err = segments(ack.build(header_of(msh), "AE", [error]))["ERR"][0]
    assert err[1] == "MSH^1^10^207&Application internal error&HL70357"
    assert err[2] == "MSH^1^10"


def test_missing_version_is_echoed_empty_and_uses_err1() -> None:
    msh = MSH.replace("|2.5.1", "")
    segs = segments(ack.build(header_of(msh), "AR", [ErrorDetail(203, "no version", "MSH", 1, 12)]))
    assert segs["MSH"][0][12] == ""
    assert segs["ERR"][0][1].startswith("MSH^1^12^203&")


def test_our_text_is_escaped_with_the_senders_delimiters() -> None:
    error = ErrorDetail(102, "bad value a|b^c~d\\e&f", "OBX", 2, 5)
    err = segments(ack.build(header_of(MSH), "AE", [error]))["ERR"][0]
    assert err[8] == "bad value a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f"


def test_sender_delimiters_are_used_in_the_ack() -> None:
    fields = ["MSH", "#", "$%\\*", "LAB", "HOSP", "EHR", "MAIN", "", "", "ADT$A04", "C1", "T", "2.4"]
    text = ack.build(Header.from_fields(fields), "AA")
    msh = text.split("\r")[0].split("#")
    assert msh[1] == "$%\\*"
    assert msh[8] == "ACK$A04$ACK"
    assert msh[10] == "T"


def test_charset_is_echoed() -> None:
    text = ack.build(header_of(MSH + "||||||8859/1"), "AA")
    assert text.split("\r")[0].split("|")[17] == "8859/1"


def test_minimal_nak_without_a_header() -> None:
    text = ack.build(ack.MINIMAL, "AR", [ErrorDetail(100, "no MSH", "MSH", 1)])
    segs = segments(text)
    assert segs["MSH"][0][9] == "ACK"
    assert segs["MSA"][0][1:3] == ["AR", ""]
    assert segs["ERR"][0][3].startswith("100^Segment sequence error")


@pytest.mark.parametrize(
    ("msh15", "msh16", "outcome", "code"),
    [
        ("", "", Outcome.ACCEPT, "AA"),
        ("", "", Outcome.ERROR, "AE"),
        ("", "", Outcome.REJECT, "AR"),
        ("AL", "NE", Outcome.ACCEPT, "CA"),
        ("AL", "", Outcome.ERROR, "CE"),
        ("", "AL", Outcome.REJECT, "CR"),
    ],
)
def test_code_for_mode(msh15: str, msh16: str, outcome: Outcome, code: str) -> None:
    header = header_of(MSH + f"|||{msh15}|{msh16}")
    assert ack.code_for(header, outcome) == code


@pytest.mark.parametrize(
    ("msh15", "code", "sent"),
    [
        ("AL", "CA", True),
        ("NE", "CA", False),
        ("NE", "CE", False),
        ("ER", "CA", False),
        ("ER", "CE", True),
        ("SU", "CA", True),
        ("SU", "CR", False),
    ],
)
def test_msh15_condition(msh15: str, code: str, sent: bool) -> None:
    assert ack.should_send(header_of(MSH + f"|||{msh15}|AL"), code) is sent


def test_original_mode_always_answers() -> None:
    assert ack.should_send(header_of(MSH), "AE")
