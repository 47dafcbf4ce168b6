"""Errors a message can fail with, each carrying what an HL7 ERR segment needs.

The listener renders either kind as an AE/AR ACK: ``code`` is an HL7 table 0357 message error
condition code (ERR-3), ``location`` names where the problem is (ERR-2), ``reason`` is text
for a person (ERR-8). Parse and mapping failures share one base so one ``except`` serves both.
"""

from __future__ import annotations

# HL7 table 0357 (message error condition codes) used by the parser and the mappings.
SEGMENT_SEQUENCE_ERROR = 100
REQUIRED_FIELD_MISSING = 101
DATA_TYPE_ERROR = 102
TABLE_VALUE_NOT_FOUND = 103
UNSUPPORTED_MESSAGE_TYPE = 200
UNSUPPORTED_EVENT_CODE = 201
UNSUPPORTED_PROCESSING_ID = 202
UNSUPPORTED_VERSION_ID = 203
UNKNOWN_KEY_IDENTIFIER = 204
APPLICATION_INTERNAL_ERROR = 207


class Hl7Error(Exception):
    """A message that cannot be accepted, with its table 0357 code and where it went wrong.

    ``segment`` is the segment id (``"PID"``), ``field`` the HL7 field number (1-based, MSH
    numbered as in the standard), ``position`` the 1-based index of the segment in the message
    when known. ``location`` renders them as ``PID-3`` (or ``segment 4`` without a field).
    """

    def __init__(
        self,
        code: int,
        reason: str,
        segment: str | None = None,
        field: int | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.segment = segment
        self.field = field
        self.position = position

    @property
    def location(self) -> str:
        """``SEG-n`` when the field is known, else the segment id or its position, else ``""``."""
        if self.segment and self.field is not None:
            return f"{self.segment}-{self.field}"
        if self.segment:
            return self.segment
        if self.position is not None:
            return f"segment {self.position}"
        return ""

    def __str__(self) -> str:
        where = self.location
        return f"{self.code} {where}: {self.reason}" if where else f"{self.code}: {self.reason}"


class ParseError(Hl7Error):
    """The bytes are not an HL7 v2 message this parser can tokenize.

    ``header`` holds the raw MSH fields (HL7 numbering, index 0 is ``"MSH"``) when the MSH was
    read before the failure, so the listener can still address its negative ACK.
    """

    def __init__(
        self,
        code: int,
        reason: str,
        segment: str | None = None,
        field: int | None = None,
        position: int | None = None,
        header: list[str] | None = None,
    ) -> None:
        super().__init__(code, reason, segment, field, position)
        self.header = header


class MappingError(Hl7Error):
    """A well-formed message that cannot be turned into a FHIR Bundle."""
