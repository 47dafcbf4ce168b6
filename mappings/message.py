"""A lean HL7 v2 (ER7) parser for the hot path: bytes in, a lazily split :class:`Message` out.

hl7apy builds a typed tree of every element and takes ~15-20 ms for a small ADT; the listener
must take ~1,000 messages a second. :func:`parse` only splits segments and fields (one
``str.split`` each); repetitions, components and subcomponents are split, and escape sequences
decoded, when a value is read. See ``docs/benchmarks.md`` for the figures.

Numbering follows HL7 everywhere: fields, components and subcomponents are 1-based, and MSH-1
is the field separator itself, MSH-2 the encoding characters, MSH-3 the sending application.
Repetitions are 0-based in method arguments (``rep=0`` is the first), 1-based in paths.

Values come back as ``str``, decoded (escapes, character set). Three states are kept apart:
absent or empty (``""``), and the explicit HL7 null ``""`` sent on the wire, returned as
:data:`NULL` -- also an empty, falsy ``str``, so code that only wants "a value or not" need
not care, while code that must clear a stored value checks ``value is NULL`` or
:meth:`Segment.is_null`.

Example::

    msg = parse(data)
    msg.message_type, msg.trigger_event, msg.structure   # "ADT", "A08", "ADT_A01"
    pid = msg.segment("PID")
    pid.get(5, component=1)                              # family name, decoded
    [f.component(1) for f in pid.repetitions(3)]         # every identifier value
    msg.get("PID-3[2].4.2")                              # 2nd PID-3 repetition, CX-4.2
    for obx in msg.segments("OBX"): obx.field(5).component(1)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from mappings.charsets import charset_from_bytes, codec_for, decode
from mappings.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    ParseError,
)
from mappings.escapes import Escapes
from mappings.structures import structure_for

__all__ = ["NULL", "Field", "Message", "ParseError", "Segment", "parse"]


class _Null(str):
    """The type of :data:`NULL`: an empty string that is distinguishable by identity."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL"


NULL: Final[str] = _Null()
"""The HL7 explicit null (``""`` on the wire): the receiver must delete the value it holds."""

_WIRE_NULL = '""'
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
_PATH = re.compile(r"([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?-(\d+)(?:\[(\d+)\])?(?:\.(\d+))?(?:\.(\d+))?")


class Delimiters:
    """The five delimiters of one message and its escape rules (shared by all its values)."""

    __slots__ = ("component", "escapes", "field", "repetition", "subcomponent")

    def __init__(self, field: str, encoding: str, codec: str) -> None:
        self.field = field
        self.component = encoding[0]
        self.repetition = encoding[1]
        self.subcomponent = encoding[3] if len(encoding) > 3 else ""
        self.escapes = Escapes(field, encoding, codec)

    def value(self, raw: str) -> str:
        """A leaf value decoded; the wire null becomes :data:`NULL`."""
        if raw == _WIRE_NULL:
            return NULL
        return self.escapes.decode(raw)


class Field:
    """One repetition of a field: an instance of its data type (a CX, an XPN, a CWE...).

    Falsy when empty or null, so ``if field:`` asks "did the sender give a value".
    """

    __slots__ = ("_components", "_delims", "raw")

    def __init__(self, raw: str, delims: Delimiters | None) -> None:
        self.raw = raw
        self._delims = delims
        self._components: list[str] | None = None

    def __bool__(self) -> bool:
        return self.raw != "" and self.raw != _WIRE_NULL

    def __repr__(self) -> str:
        return f"Field({self.raw!r})"

    @property
    def is_null(self) -> bool:
        """The sender sent ``""``: delete what is stored for this field."""
        return self.raw == _WIRE_NULL

    @property
    def text(self) -> str:
        """The whole repetition decoded, separators kept (for ST/TX/FT fields)."""
        if self._delims is None:
            return self.raw
        return self._delims.value(self.raw)

    def _split(self) -> list[str]:
        if self._components is None:
            d = self._delims
            self._components = self.raw.split(d.component) if d is not None else [self.raw]
        return self._components

    def component(self, component: int = 1, subcomponent: int = 1) -> str:
        """Component ``component``, subcomponent ``subcomponent`` (1-based), decoded; ``""`` if absent."""
        d = self._delims
        if d is None:
            return self.raw if component == 1 and subcomponent == 1 else ""
        parts = self._split()
        if component < 1 or component > len(parts):
            return ""
        raw = parts[component - 1]
        if d.subcomponent and d.subcomponent in raw:
            subs = raw.split(d.subcomponent)
            if subcomponent < 1 or subcomponent > len(subs):
                return ""
            raw = subs[subcomponent - 1]
        elif subcomponent != 1:
            return ""
        return d.value(raw)

    def subcomponents(self, component: int) -> list[str]:
        """Every subcomponent of ``component``, decoded (``[]`` when absent)."""
        d = self._delims
        parts = self._split()
        if d is None or component < 1 or component > len(parts):
            return []
        raw = parts[component - 1]
        pieces = raw.split(d.subcomponent) if d.subcomponent else [raw]
        return [d.value(p) for p in pieces]

    def components(self) -> list[str]:
        """Every component (first subcomponent of each), decoded."""
        return [self.component(i) for i in range(1, len(self._split()) + 1)]

    def __len__(self) -> int:
        """The number of components present."""
        return len(self._split()) if self.raw else 0


_EMPTY = Field("", None)


class Segment:
    """One segment: its id and its fields as sent (still escaped).

    ``fields[n]`` is field *n* in HL7 numbering (``fields[0]`` is the segment id); for MSH,
    ``fields[1]`` is the field separator and ``fields[2]`` the encoding characters.
    """

    __slots__ = ("_delims", "_reps", "fields", "name", "position")

    def __init__(self, fields: list[str], delims: Delimiters, position: int) -> None:
        self.name = fields[0]
        self.fields = fields
        self._delims = delims
        self.position = position
        self._reps: dict[int, list[Field]] = {}

    def __repr__(self) -> str:
        return f"Segment({self.name!r}, position={self.position})"

    def __len__(self) -> int:
        """The number of the last field present (``PID|1|2`` has 2)."""
        return len(self.fields) - 1

    def raw(self, field: int) -> str:
        """Field ``field`` exactly as sent, all repetitions, still escaped (``""`` if absent)."""
        if 0 < field < len(self.fields):
            return self.fields[field]
        return ""

    def _literal(self, field: int) -> bool:
        return field <= 2 and self.name == "MSH"

    def repetitions(self, field: int) -> list[Field]:
        """Every repetition of ``field`` (``[]`` when absent or empty); split once, then cached."""
        return list(self._repetitions(field))

    def _repetitions(self, field: int) -> list[Field]:
        found = self._reps.get(field)
        if found is None:
            raw = self.raw(field)
            if not raw:
                found = []
            elif self._literal(field):
                found = [Field(raw, None)]
            else:
                d = self._delims
                found = [Field(r, d) for r in raw.split(d.repetition)]
            self._reps[field] = found
        return found

    def field(self, field: int, rep: int = 0) -> Field:
        """Repetition ``rep`` (0-based) of ``field``; an empty :class:`Field` when absent."""
        reps = self._repetitions(field)
        if 0 <= rep < len(reps):
            return reps[rep]
        return _EMPTY

    def get(self, field: int, rep: int = 0, component: int = 1, subcomponent: int = 1) -> str:
        """One leaf value, decoded; ``""`` when absent, :data:`NULL` when sent as ``""``."""
        return self.field(field, rep).component(component, subcomponent)

    def is_null(self, field: int, rep: int = 0, component: int | None = None) -> bool:
        """Whether the field (or one component of it) was sent as the explicit null ``""``."""
        f = self.field(field, rep)
        if component is None:
            return f.is_null
        return f.component(component) is NULL


class Message:
    """A parsed message: its segments in order, the MSH accessors the listener needs, paths."""

    __slots__ = ("_by_name", "charset", "codec", "delimiters", "header", "segment_list")

    def __init__(self, segments: list[Segment], delimiters: Delimiters, charset: str, codec: str) -> None:
        self.segment_list = segments
        self.delimiters = delimiters
        self.charset = charset
        """MSH-18 as sent (first repetition), ``""`` when absent."""
        self.codec = codec
        """The Python codec the message was decoded with."""
        self.header = segments[0]
        self._by_name: dict[str, list[Segment]] = {}
        for s in segments:
            self._by_name.setdefault(s.name, []).append(s)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segment_list)

    def __repr__(self) -> str:
        return f"Message({self.message_type}^{self.trigger_event} {self.control_id!r})"

    # generic access
    def segments(self, name: str | None = None) -> list[Segment]:
        """Every segment with id ``name`` in message order (every segment when ``None``)."""
        if name is None:
            return list(self.segment_list)
        return list(self._by_name.get(name, ()))

    def segment(self, name: str, index: int = 0) -> Segment | None:
        """The ``index``-th (0-based) segment with id ``name``, or ``None``."""
        found = self._by_name.get(name, ())
        return found[index] if 0 <= index < len(found) else None

    def get(self, path: str) -> str:
        """A value by terse path: ``SEG[n]-F[r].C.S``, all 1-based, brackets optional.

        ``PID-5.1`` is the family name of the first PID-5; ``OBX[3]-5`` the first component of
        the third OBX's OBX-5; ``PID-3[2].4.2`` the universal id of the second identifier's
        assigning authority. A missing component means component 1. Raises ``ValueError``
        for a malformed path (a programming error, not a message error).
        """
        m = _PATH.fullmatch(path)
        if not m:
            raise ValueError(f"not an HL7 path: {path!r}")
        name, seg_i, field, rep, comp, sub = m.groups()
        segment = self.segment(name, int(seg_i or 1) - 1)
        if segment is None:
            return ""
        return segment.get(int(field), int(rep or 1) - 1, int(comp or 1), int(sub or 1))

    # MSH accessors (whole-field texts are raw, for echoing in an ACK)
    @property
    def msh_fields(self) -> list[str]:
        """The raw MSH fields in HL7 numbering: ``msh_fields[n]`` is MSH-n, index 0 is ``"MSH"``."""
        return list(self.header.fields)

    @property
    def field_separator(self) -> str:
        return self.delimiters.field

    @property
    def encoding_characters(self) -> str:
        return self.header.raw(2)

    @property
    def sending_application(self) -> str:
        """MSH-3, the whole field as sent (``LAB^1.2.3^ISO``)."""
        return self.header.raw(3)

    @property
    def sending_facility(self) -> str:
        """MSH-4, the whole field as sent."""
        return self.header.raw(4)

    @property
    def receiving_application(self) -> str:
        """MSH-5, the whole field as sent."""
        return self.header.raw(5)

    @property
    def receiving_facility(self) -> str:
        """MSH-6, the whole field as sent."""
        return self.header.raw(6)

    @property
    def timestamp(self) -> str:
        """MSH-7.1, the message date/time as sent (an HL7 TS/DTM string)."""
        return self.header.get(7)

    @property
    def message_type(self) -> str:
        """MSH-9.1 (``ADT``)."""
        return self.header.get(9, component=1)

    @property
    def trigger_event(self) -> str:
        """MSH-9.2 (``A01``); ``""`` for messages without one (``ACK``)."""
        return self.header.get(9, component=2)

    @property
    def structure(self) -> str:
        """MSH-9.3, or when missing the structure the trigger implies (``ADT^A04`` -> ``ADT_A01``)."""
        return self.header.get(9, component=3) or structure_for(self.message_type, self.trigger_event)

    @property
    def control_id(self) -> str:
        """MSH-10, the message control id the ACK echoes in MSA-2."""
        return self.header.get(10)

    @property
    def processing_id(self) -> str:
        """MSH-11.1 (``P`` production, ``T`` training, ``D`` debugging)."""
        return self.header.get(11)

    @property
    def version(self) -> str:
        """MSH-12.1 (``2.5.1``); ``""`` when the sender left it out."""
        return self.header.get(12)

    @property
    def accept_ack_type(self) -> str:
        """MSH-15 (``AL``, ``NE``, ``ER``, ``SU``); ``""`` means original acknowledgment mode."""
        return self.header.get(15)

    @property
    def application_ack_type(self) -> str:
        """MSH-16 (``AL``, ``NE``, ``ER``, ``SU``)."""
        return self.header.get(16)


def _check_encoding(field: str, encoding: str, header: list[str]) -> None:
    """Reject delimiters that cannot work: wrong count, repeated, letters, digits or blanks."""
    if len(field) != 1 or field.isalnum() or field.isspace():
        raise ParseError(DATA_TYPE_ERROR, "invalid field separator", "MSH", 1, 1, header)
    if not 4 <= len(encoding) <= 5:
        raise ParseError(DATA_TYPE_ERROR, "MSH-2 must hold 4 (or 5) encoding characters", "MSH", 2, 1, header)
    chars = field + encoding
    if len(set(chars)) != len(chars) or any(c.isalnum() or c.isspace() for c in encoding):
        raise ParseError(DATA_TYPE_ERROR, "invalid encoding characters", "MSH", 2, 1, header)


def _segment_lines(text: str) -> list[str]:
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return text.split("\r")


def parse(data: bytes | str) -> Message:
    """Tokenize one HL7 v2 message (ER7 encoding), decoding bytes per MSH-18.

    Segments may end with CR, LF or CRLF, mixed; empty lines are ignored. Raises
    :class:`ParseError` (table 0357 code and location) when the data does not start with an
    MSH, the delimiters are unusable, MSH-9 is missing, or a segment id is not ``[A-Z][A-Z0-9]{2}``.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data).lstrip(b"\r\n\t \x0b")
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.startswith(b"MSH"):
            raise ParseError(SEGMENT_SEQUENCE_ERROR, "message does not start with MSH", "MSH", None, 1)
        charset = charset_from_bytes(raw)
        codec = codec_for(charset)
        text = decode(raw, codec)
    else:
        text = data.lstrip("\r\n\t \x0b\ufeff")
        charset = ""
        codec = ""
    if not text.startswith("MSH") or len(text) < 4:
        raise ParseError(SEGMENT_SEQUENCE_ERROR, "message does not start with MSH", "MSH", None, 1)
    lines = _segment_lines(text)
    fs = text[3]
    parts = lines[0].split(fs)
    header = ["MSH", fs, *parts[1:]]
    _check_encoding(fs, parts[1] if len(parts) > 1 else "", header)
    if not codec:  # text input: MSH-18 read from the header itself
        charset = header[18].split(parts[1][0])[0].split(parts[1][1])[0].strip() if len(header) > 18 else ""
        codec = codec_for(charset)
    delims = Delimiters(fs, parts[1], codec)
    if len(header) < 10 or not header[9].split(delims.component)[0]:
        raise ParseError(REQUIRED_FIELD_MISSING, "MSH-9 message type is missing", "MSH", 9, 1, header)
    segments = [Segment(header, delims, 1)]
    for line in lines[1:]:
        if not line or line.isspace():
            continue
        position = len(segments) + 1
        name = line[:3]
        if not _SEGMENT_ID.fullmatch(name) or (len(line) > 3 and line[3] != fs):
            reason = f"invalid segment {line[:8]!r}"
            raise ParseError(SEGMENT_SEQUENCE_ERROR, reason, None, None, position, header)
        segments.append(Segment(line.split(fs), delims, position))
    return Message(segments, delims, charset, codec)
