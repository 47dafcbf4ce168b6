"""Property test: no input makes the parser raise anything but ParseError, or hang.

Generated inputs are HL7-shaped (an MSH with random delimiters, then segments of random
fields made of delimiters, escapes and text) as well as arbitrary bytes; every value of every
parsed message is read back, so lazy splitting and escape decoding are exercised too.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mappings.errors import ParseError
from mappings.message import Message, parse

_PIECES = st.sampled_from(
    ["|", "^", "~", "\\", "&", "#", '""', "\\X41\\", "\\X4\\", "\\.br\\", "\\F\\", "\\E", "\r", "\n", "é"]
)
_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=12).map("".join)


@st.composite
def hl7_like(draw: st.DrawFn) -> bytes:
    delims = draw(st.sampled_from(["|^~\\&", "|^~\\&#", "*:!%@", "|^~\\", "||~\\&", "|^~\\&&"]))
    msh = f"MSH{delims[0]}{delims[1:]}" + delims[0].join(
        [
            "A",
            "B",
            "C",
            "D",
            "20240101",
            "",
            draw(_TEXT),
            draw(_TEXT),
            "P",
            "2.5",
            *draw(st.lists(_TEXT, max_size=8)),
        ]
    )
    segments = draw(
        st.lists(
            st.tuples(st.sampled_from(["PID", "OBX", "ZXY", "pid", "OB"]), st.lists(_TEXT, max_size=6)),
            max_size=5,
        )
    )
    ends = st.sampled_from(["\r", "\n", "\r\n"])
    body = "".join(draw(ends) + delims[0].join([name, *fields]) for name, fields in segments)
    charset = draw(st.sampled_from(["utf-8", "iso8859-1"]))
    return (msh + body).encode(charset, "replace")


def _read_everything(msg: Message) -> None:
    for name in ("message_type", "trigger_event", "structure", "control_id", "version", "charset"):
        assert isinstance(getattr(msg, name), str)
    for segment in msg:
        for n in range(1, len(segment) + 2):
            for rep in segment.repetitions(n):
                for c in range(1, len(rep) + 2):
                    assert isinstance(rep.component(c), str)
                    assert isinstance(rep.component(c, 2), str)
                    rep.subcomponents(c)
                assert isinstance(rep.text, str)


@settings(max_examples=300, deadline=1000)
@given(hl7_like())
def test_hl7_shaped_input_parses_or_raises_parse_error(data: bytes) -> None:
    try:
        msg = parse(data)
    except ParseError as error:
        code = error.code
    else:
        _read_everything(msg)
        code = 0
    assert code in (0, 100, 101, 102)


@settings(max_examples=300, deadline=1000)
@given(st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(lambda b: b"MSH|^~\\&|" + b)))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    try:
        msg = parse(data)
    except ParseError:
        return
    _read_everything(msg)


@settings(max_examples=200, deadline=1000)
@given(st.text(max_size=200).map(lambda t: "MSH|^~\\&|" + t))
def test_arbitrary_text_parses_or_raises_parse_error(text: str) -> None:
    try:
        msg = parse(text)
    except ParseError:
        return
    _read_everything(msg)
