"""Mapping failures are precise: a table 0357 code and the segment/field they concern."""

from __future__ import annotations

import pytest

from mappings import MappingError, parse, to_bundle

PID = "PID|1||PAT1^^^GHH^MR||Doe^Jane"


def _fails(text: str) -> MappingError:
    with pytest.raises(MappingError) as caught:
        to_bundle(parse(text))
    return caught.value


@pytest.mark.parametrize(
    ("text", "code", "location"),
    [
        ("MSH|^~\\&|A|B|C|D|20240101||ZZZ^Z01|1|P|2.5\r" + PID, 200, "MSH-9"),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A99|1|P|2.5\r" + PID, 201, "MSH-9"),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.2\r" + PID, 203, "MSH-12"),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rEVN|A01", 100, "PID"),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A28|1|P|2.5\rPID|1||||Doe", 101, "PID-3"),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\r" + PID + "\rPV1|1|I", 101, "PV1-19"),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A40|1|P|2.5\r" + PID, 101, "MRG"),
        (
            "MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5\r"
            + PID
            + "\rOBR|1||F1|X^x^LN\rOBX|1|NM|X^x^LN||high",
            102,
            "OBX-5",
        ),
        ("MSH|^~\\&|A|B|C|D|20240101||ADT^A28|1|P|2.5\rPID|1||P1^^^GHH||Doe||19801340", 102, "PID-7"),
        ("MSH|^~\\&|A|B|C|D|||ADT^A28|1|P|2.5\r" + PID, 101, "MSH-7"),
        ("MSH|^~\\&|A|B|C|D|20240101||ORM^O01|1|P|2.5\r" + PID + "\rORC|NW|\rOBR|1|||X^x^LN", 101, "ORC-2"),
        ("MSH|^~\\&|A|B|C|D|20240101||MDM^T02|1|P|2.5\r" + PID + "\rTXA|1|DS|TX", 101, "TXA-12"),
        ("MSH|^~\\&|A|B|C|D|20240101||VXU^V04|1|P|2.5\r" + PID + "\rRXA|0|1|20240101||", 101, "RXA-5"),
    ],
)
def test_mapping_errors(text: str, code: int, location: str) -> None:
    error = _fails(text)
    assert (error.code, error.location) == (code, location)


def test_missing_version_is_accepted() -> None:
    bundle = to_bundle(parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A28|1|P\r" + PID))
    assert bundle["type"] == "transaction"
