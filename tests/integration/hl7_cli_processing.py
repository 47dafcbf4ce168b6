"""Processing for the ``interop hl7 replay`` test: fails messages whose control id starts with BAD."""

from __future__ import annotations

from fhir_server.repository.inbox import InboxRecord
from hl7_listener.handler import ProcessResult
from mappings.errors import MappingError
from mappings.message import Message


def strict(message: Message, record: InboxRecord) -> ProcessResult:
    if message.control_id.startswith("BAD"):
        raise MappingError(101, "PID-3 is required", "PID", 3)
    return ProcessResult([f"Patient/{message.control_id}"])


def lenient(message: Message, record: InboxRecord) -> ProcessResult:
    return ProcessResult([f"Patient/{message.control_id}"])
