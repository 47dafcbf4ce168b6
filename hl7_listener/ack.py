"""ACK and NAK messages, built from the received MSH as HL7 v2 chapter 2 says.

* MSH: the sender's own separators (MSH-1/2) so echoed fields stay valid; sending and
  receiving application/facility swapped; a new control id (MSH-10); MSH-9
  ``ACK^<trigger>^ACK``; processing id (MSH-11), version (MSH-12) and character set
  (MSH-18) echoed.
* MSA: MSA-1 the acknowledgment code, MSA-2 the received MSH-10, MSA-3 a short text.
* ERR, one per error: ERR-2 location (segment^sequence^field), ERR-3 the HL7 table 0357
  code (``code^text^HL70357``), ERR-4 severity, ERR-8 a message for a person; ERR-1 (the
  pre-2.5 location-and-code field) too when the version is older than 2.5 or missing.

Original mode (MSH-15 and MSH-16 empty) answers AA/AE/AR after processing. Enhanced mode
(either present) answers a *commit* ACK, CA/CE/CR, once the message is durably stored, and
only when MSH-15's condition (AL/NE/ER/SU; empty = AL) asks for it. Application ACKs of
enhanced mode (MSH-16) need a return link to the sender, which this listener does not
open: the application outcome is recorded in the inbox (see docs/architecture.md).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

# HL7 table 0357 (message error condition codes) and their display text.
ERROR_TEXT: dict[int, str] = {
    0: "Message accepted",
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}
SEGMENT_SEQUENCE_ERROR = 100
REQUIRED_FIELD_MISSING = 101
DATA_TYPE_ERROR = 102
APPLICATION_INTERNAL_ERROR = 207

DEFAULT_ENCODING = "^~\\&"
ACCEPT_ACK_CONDITIONS = ("AL", "NE", "ER", "SU")


class Outcome(StrEnum):
    """What happened to a message, independent of the acknowledgment mode."""

    ACCEPT = "accept"
    ERROR = "error"  # stored or storable, but failed (or the store is down): the sender may retry
    REJECT = "reject"  # will never be accepted as sent (bad header, unsupported type or version)


_CODES = {
    (Outcome.ACCEPT, False): "AA",
    (Outcome.ERROR, False): "AE",
    (Outcome.REJECT, False): "AR",
    (Outcome.ACCEPT, True): "CA",
    (Outcome.ERROR, True): "CE",
    (Outcome.REJECT, True): "CR",
}
POSITIVE_CODES = frozenset({"AA", "CA"})


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One ERR segment: a table 0357 code, where, how bad, and why."""

    code: int
    reason: str
    segment: str = ""
    sequence: int | None = None
    field: int | None = None
    severity: str = "E"  # table 0516: E error, W warning, I information, F fatal


@dataclass(frozen=True, slots=True)
class Header:
    """The fields of a received MSH an acknowledgment needs (raw, still escaped)."""

    field_separator: str = "|"
    encoding: str = DEFAULT_ENCODING
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    trigger: str = ""
    control_id: str = ""
    processing_id: str = "P"
    version: str = ""
    accept_ack_type: str = ""
    application_ack_type: str = ""
    charset: str = ""

    @classmethod
    def from_fields(cls, fields: Sequence[str]) -> Header:
        """From MSH fields in HL7 numbering (``fields[0] == "MSH"``, ``fields[1]`` = MSH-1)."""

        def f(n: int) -> str:
            return fields[n] if n < len(fields) else ""

        separator = f(1)[:1] or "|"
        encoding = f(2) or DEFAULT_ENCODING
        component = encoding[0]
        message_type = f(9).split(component)
        return cls(
            field_separator=separator,
            encoding=encoding,
            sending_application=f(3),
            sending_facility=f(4),
            receiving_application=f(5),
            receiving_facility=f(6),
            trigger=message_type[1] if len(message_type) > 1 else "",
            control_id=f(10),
            processing_id=f(11) or "P",
            version=f(12).split(component)[0],
            accept_ack_type=f(15),
            application_ack_type=f(16),
            charset=f(18).split(encoding[1] if len(encoding) > 1 else "~")[0],
        )

    @property
    def enhanced(self) -> bool:
        """Enhanced acknowledgment mode: MSH-15 or MSH-16 is valued."""
        return bool(self.accept_ack_type or self.application_ack_type)


MINIMAL = Header()


def code_for(header: Header, outcome: Outcome) -> str:
    """MSA-1 for an outcome: AA/AE/AR in original mode, CA/CE/CR in enhanced mode."""
    return _CODES[(outcome, header.enhanced)]


def should_send(header: Header, code: str) -> bool:
    """Whether MSH-15 asks for this commit ACK (always true in original mode)."""
    if not header.enhanced:
        return True
    condition = header.accept_ack_type.upper() or "AL"
    if condition == "NE":
        return False
    if condition == "ER":
        return code not in POSITIVE_CODES
    if condition == "SU":
        return code in POSITIVE_CODES
    return True


_counter = itertools.count()
_PREFIX = f"{os.getpid() % 100000:05d}"


def new_control_id() -> str:
    """Unique per listener process and time; 20 characters, MSH-10's length in v2.5."""
    return f"{_PREFIX}{time.time_ns() // 1000 % 10**9:09d}{next(_counter) % 10**6:06d}"


def escape(text: str, separator: str, encoding: str) -> str:
    """Escape our own text with the sender's delimiters (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\)."""
    escape_char = encoding[2] if len(encoding) > 2 else "\\"
    codes = {escape_char: "E", separator: "F"}
    for char, code in zip(encoding, "SRET", strict=False):
        codes.setdefault(char, code)
    text = text.replace("\r", " ").replace("\n", " ")
    return "".join(f"{escape_char}{codes[c]}{escape_char}" if c in codes else c for c in text)


def _older_than_25(version: str) -> bool:
    parts = version.split(".")
    try:
        return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0) < (2, 5)
    except ValueError:
        return True


def build(
    header: Header,
    code: str,
    errors: Sequence[ErrorDetail] = (),
    text: str = "",
    *,
    now: datetime | None = None,
    control_id: str | None = None,
) -> str:
    """The ACK message text, segments separated by CR."""
    sep, enc = header.field_separator, header.encoding
    comp = enc[0]
    sub = enc[3] if len(enc) > 3 else "&"
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S+0000")
    message_type = f"ACK{comp}{header.trigger}{comp}ACK" if header.trigger else "ACK"
    msh = [
        "MSH",
        enc,
        header.receiving_application,
        header.receiving_facility,
        header.sending_application,
        header.sending_facility,
        stamp,
        "",
        message_type,
        control_id or new_control_id(),
        header.processing_id,
        header.version,
    ]
    if header.charset:
        msh += ["", "", "", "", "", header.charset]
    segments = [sep.join(msh)]
    msa_text = escape((text or (errors[0].reason if errors else ""))[:80], sep, enc)
    segments.append(sep.join(["MSA", code, header.control_id, msa_text]).rstrip(sep))
    legacy = _older_than_25(header.version)
    for error in errors:
        label = ERROR_TEXT.get(error.code, "Error")
        sequence = "" if error.sequence is None else str(error.sequence)
        field = "" if error.field is None else str(error.field)
        location = comp.join([error.segment, sequence, field]).rstrip(comp)
        hl7_code = comp.join([str(error.code), label, "HL70357"])
        erl_code = sub.join([str(error.code), label, "HL70357"])
        err1 = comp.join([error.segment, sequence, field, erl_code]) if legacy else ""
        reason = escape(error.reason, sep, enc)
        segments.append(sep.join(["ERR", err1, location, hl7_code, error.severity, "", "", "", reason]))
    return "\r".join(segments) + "\r"


__all__ = [
    "APPLICATION_INTERNAL_ERROR",
    "ERROR_TEXT",
    "MINIMAL",
    "POSITIVE_CODES",
    "ErrorDetail",
    "Header",
    "Outcome",
    "build",
    "code_for",
    "escape",
    "new_control_id",
    "should_send",
]
