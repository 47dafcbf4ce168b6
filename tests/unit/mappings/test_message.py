"""The lean HL7 v2 parser: separators, numbering, repetitions, nulls, MSH accessors, garbage."""

from __future__ import annotations

import pytest

from mappings.errors import ParseError
from mappings.message import NULL, parse

ADT = (
    "MSH|^~\\&|ADT1^1.2.840.114350^ISO|GOOD HEALTH HOSPITAL|GHH LAB|ELAB-3|200501011200||ADT^A01^ADT_A01"
    "|MSG00001|P|2.5.1|||AL|NE|||\r"
    "EVN|A01|200501011200\r"
    "PID|1||PATID1234^^^GHH^MR~123456789^^^USSSA^SS||EVERYMAN^ADAM^A^III||19610615|M\r"
    "PV1|1|I|2000^2012^01||||004777^ATTEND^AARON^A|||SUR\r"
)


def test_segments_in_order_and_by_name() -> None:
    msg = parse(ADT)
    assert [s.name for s in msg] == ["MSH", "EVN", "PID", "PV1"]
    assert [s.position for s in msg] == [1, 2, 3, 4]
    assert msg.segment("PID") is msg.segments("PID")[0]
    assert msg.segment("OBX") is None
    assert msg.segments("OBX") == []


def test_msh_numbering_follows_hl7() -> None:
    msg = parse(ADT)
    msh = msg.header
    assert msh.get(1) == "|"
    assert msh.get(2) == "^~\\&"
    assert msh.raw(3) == "ADT1^1.2.840.114350^ISO"
    assert msh.get(9, component=2) == "A01"
    assert msg.msh_fields[10] == "MSG00001"
    assert msg.msh_fields[0] == "MSH"


def test_msh_accessors() -> None:
    msg = parse(ADT)
    assert msg.sending_application == "ADT1^1.2.840.114350^ISO"
    assert msg.sending_facility == "GOOD HEALTH HOSPITAL"
    assert msg.receiving_application == "GHH LAB"
    assert msg.receiving_facility == "ELAB-3"
    assert msg.timestamp == "200501011200"
    assert (msg.message_type, msg.trigger_event, msg.structure) == ("ADT", "A01", "ADT_A01")
    assert msg.control_id == "MSG00001"
    assert msg.processing_id == "P"
    assert msg.version == "2.5.1"
    assert msg.accept_ack_type == "AL"
    assert msg.application_ack_type == "NE"
    assert msg.charset == ""
    assert msg.codec == "utf-8"


@pytest.mark.parametrize(
    ("msh9", "structure"),
    [
        ("ADT^A04", "ADT_A01"),
        ("ADT^A08", "ADT_A01"),
        ("ADT^A03", "ADT_A03"),
        ("ADT^A28", "ADT_A05"),
        ("ADT^A40", "ADT_A39"),
        ("ADT^A11", "ADT_A09"),
        ("ORU^R01", "ORU_R01"),
        ("SIU^S14", "SIU_S12"),
        ("MDM^T02", "MDM_T02"),
        ("ZZZ^Z99", "ZZZ_Z99"),
        ("ACK", "ACK"),
        ("ADT^A04^ADT_A01", "ADT_A01"),
        ("ORU^R01^ORU_R01_X", "ORU_R01_X"),
    ],
)
def test_structure_from_msh9_or_derived(msh9: str, structure: str) -> None:
    msg = parse(f"MSH|^~\\&|A|B|C|D|20240101||{msh9}|1|P|2.3\r")
    assert msg.structure == structure


def test_version_may_be_missing() -> None:
    msg = parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P")
    assert msg.version == ""
    assert msg.accept_ack_type == ""


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_segment_separators(sep: str) -> None:
    msg = parse(ADT.replace("\r", sep))
    assert [s.name for s in msg] == ["MSH", "EVN", "PID", "PV1"]
    assert msg.segment("PV1").get(3, component=3) == "01"  # type: ignore[union-attr]


def test_mixed_separators_and_trailing_empty_segments() -> None:
    text = "MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.4\r\nEVN|A01\nPID|1\r\r\n\n  \r"
    assert [s.name for s in parse(text)] == ["MSH", "EVN", "PID"]


def test_encoding_characters_are_read_not_assumed() -> None:
    text = "MSH*:!%@*APP*FAC*R*F*1**ADT:A01*42*P*2.5\rPID*1**7:::X@Y!8:::Z**A@B:C\\D"
    msg = parse(text)
    assert msg.field_separator == "*"
    assert msg.encoding_characters == ":!%@"
    pid = msg.segment("PID")
    assert pid is not None
    assert [f.component(1) for f in pid.repetitions(3)] == ["7", "8"]
    assert pid.get(3, rep=0, component=4, subcomponent=2) == "Y"
    assert pid.get(5, component=1, subcomponent=2) == "B"
    assert pid.get(5, component=2) == "C\\D"  # backslash is not this message's escape character
    assert msg.trigger_event == "A01"


def test_repetitions_components_subcomponents() -> None:
    msg = parse(ADT)
    pid = msg.segment("PID")
    assert pid is not None
    ids = pid.repetitions(3)
    assert len(ids) == 2
    assert [f.component(1) for f in ids] == ["PATID1234", "123456789"]
    assert ids[1].component(4) == "USSSA"
    assert ids[1].components() == ["123456789", "", "", "USSSA", "SS"]
    assert pid.field(3, rep=5).component(1) == ""
    assert pid.get(99) == ""
    assert pid.get(5, component=9) == ""
    assert len(pid.field(5)) == 4
    assert len(pid) == 8


def test_subcomponents() -> None:
    msg = parse("MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5\rOBX|1|CE|x^y^LN||a&b&c^t")
    obx = msg.segment("OBX")
    assert obx is not None
    assert obx.field(5).subcomponents(1) == ["a", "b", "c"]
    assert obx.get(5, component=1, subcomponent=3) == "c"
    assert obx.get(5, component=1, subcomponent=4) == ""
    assert obx.get(5, component=2, subcomponent=2) == ""


def test_terse_paths() -> None:
    msg = parse(ADT + "OBX|1|NM|A\rOBX|2|NM|B\r")
    assert msg.get("PID-5") == "EVERYMAN"
    assert msg.get("PID-5.2") == "ADAM"
    assert msg.get("PID-3[2].4") == "USSSA"
    assert msg.get("PID-3.4.1") == "GHH"
    assert msg.get("OBX[2]-3") == "B"
    assert msg.get("OBX[3]-3") == ""
    assert msg.get("MSH-9.2") == "A01"
    with pytest.raises(ValueError, match="not an HL7 path"):
        msg.get("PID.5")


def test_explicit_null_is_distinct_from_empty() -> None:
    msg = parse('MSH|^~\\&|A|B|C|D|1||ADT^A08|1|P|2.5\rPID|1||X||""||""^a||')
    pid = msg.segment("PID")
    assert pid is not None
    assert pid.get(5) is NULL
    assert pid.get(5) == ""
    assert not pid.get(5)
    assert pid.is_null(5)
    assert not pid.is_null(6)
    assert pid.get(6) == ""
    assert pid.get(6) is not NULL
    assert not pid.is_null(7)
    assert pid.is_null(7, component=1)
    assert pid.get(7, component=2) == "a"
    assert not pid.field(5)
    assert pid.field(5).is_null
    assert pid.field(3)
    assert repr(NULL) == "NULL"


def test_escapes_decoded_on_access() -> None:
    msg = parse(
        "MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5\r"
        "OBX|1|FT|x||line\\.br\\two \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\X4869\\ \\Q\\||a\\S\\b^c"
    )
    obx = msg.segment("OBX")
    assert obx is not None
    assert obx.get(5) == "line\ntwo | ^ & ~ \\ Hi \\Q\\"
    assert obx.raw(5).startswith("line\\.br\\")
    assert obx.get(7) == "a^b"
    assert obx.get(7, component=2) == "c"
    assert obx.field(7).text == "a^b^c"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"   ",
        b"PID|1||X",
        b"HELLO WORLD",
        b"EVN|A01\rMSH|^~\\&|A",
        b"MSH",
        b"MSH|",
        b"MSH|^~",
        b"MSH|^~\\&",
        b"MSH|^~\\&|A|B|C|D|1||",
        b"MSH|^~\\&|A|B|C|D|1||^A01|1",
        b"MSHA^~\\&|A|B|C|D|1||ADT^A01|1",
        b"MSH|^^\\&|A|B|C|D|1||ADT^A01|1",
        b"MSH|^~|&|A|B|C|D|1||ADT^A01|1",
        b"MSH|ab12|A|B|C|D|1||ADT^A01|1",
        b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1\rpid|1",
        b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1\rPIDX|1",
        b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1\r\x00\x01\x02",
    ],
)
def test_garbage_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError) as caught:
        parse(data)
    assert caught.value.code in (100, 101, 102)
    assert caught.value.location


def test_parse_error_codes_and_locations() -> None:
    with pytest.raises(ParseError) as no_msh:
        parse(b"PID|1")
    assert (no_msh.value.code, no_msh.value.location) == (100, "MSH")
    with pytest.raises(ParseError) as no_type:
        parse(b"MSH|^~\\&|A|B|C|D|1||")
    assert (no_type.value.code, no_type.value.location) == (101, "MSH-9")
    assert no_type.value.header is not None
    assert no_type.value.header[3] == "A"
    with pytest.raises(ParseError) as bad_encoding:
        parse(b"MSH|^^\\&|A")
    assert (bad_encoding.value.code, bad_encoding.value.location) == (102, "MSH-2")
    with pytest.raises(ParseError) as bad_segment:
        parse(b"MSH|^~\\&|A|B|C|D|1||ADT^A01|XYZ\rEVN|A01\rhello")
    assert (bad_segment.value.code, bad_segment.value.location) == (100, "segment 3")
    assert bad_segment.value.header is not None
    assert bad_segment.value.header[10] == "XYZ"
    assert "100 segment 3" in str(bad_segment.value)


def test_z_segments_are_kept() -> None:
    msg = parse(ADT + "ZPI|1|VIP^Very important\r")
    zpi = msg.segment("ZPI")
    assert zpi is not None
    assert zpi.get(2, component=2) == "Very important"


def test_leading_framing_whitespace_and_bom_are_tolerated() -> None:
    assert parse(b"\x0b\r\n\xef\xbb\xbfMSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5").control_id == "1"


def test_truncation_character_in_v27_encoding() -> None:
    msg = parse("MSH|^~\\&#|A|B|C|D|1||ADT^A01|1|P|2.7\rPID|1||X\\P\\Y")
    assert msg.encoding_characters == "^~\\&#"
    assert msg.get("PID-3") == "X#Y"
