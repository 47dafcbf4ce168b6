"""The entry point: a parsed message -> a FHIR R4 transaction Bundle, or a MappingError.

Dispatch is a table of (message type, trigger) -> mapping function; versions 2.3 to 2.8.x
(or none given) are accepted. Nothing is written here: the caller posts the Bundle as one
transaction, so a message is stored whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mappings.context import Context, Options
from mappings.errors import (
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_VERSION_ID,
    MappingError,
)
from mappings.message import Message
from mappings.messages.adt import VISITS, adt
from mappings.messages.mdm import mdm
from mappings.messages.merge import merge
from mappings.messages.orders import order_message
from mappings.messages.oru import oru
from mappings.messages.rde import rde
from mappings.messages.siu import siu
from mappings.messages.vxu import vxu
from mappings.provenance import provenance

Mapper = Callable[[Context], None]

MAPPERS: dict[tuple[str, str], Mapper] = {("ADT", event): adt for event in VISITS}
MAPPERS[("ADT", "A40")] = merge
MAPPERS[("ORU", "R01")] = oru
MAPPERS[("ORM", "O01")] = order_message
MAPPERS[("OML", "O21")] = order_message
MAPPERS[("VXU", "V04")] = vxu
MAPPERS |= {("SIU", event): siu for event in ("S12", "S13", "S14", "S15")}
MAPPERS[("MDM", "T02")] = mdm
MAPPERS[("RDE", "O11")] = rde

VERSIONS = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"})


def mapper_for(message: Message) -> Mapper:
    """The mapping function for this message, or the 0357 error saying why there is none."""
    version = message.version
    if version and version not in VERSIONS:
        raise MappingError(
            UNSUPPORTED_VERSION_ID, f"HL7 version {version} is not supported (2.3-2.8)", "MSH", 12
        )
    found = MAPPERS.get((message.message_type, message.trigger_event))
    if found is not None:
        return found
    if any(kind == message.message_type for kind, _ in MAPPERS):
        reason = f"event {message.message_type}^{message.trigger_event} is not supported"
        raise MappingError(UNSUPPORTED_EVENT_CODE, reason, "MSH", 9)
    raise MappingError(
        UNSUPPORTED_MESSAGE_TYPE, f"message type {message.message_type} is not supported", "MSH", 9
    )


def to_bundle(message: Message, options: Options | None = None) -> dict[str, Any]:
    """Map ``message`` to a FHIR R4 transaction Bundle (deterministic: same message, same Bundle).

    Raises :class:`~mappings.errors.MappingError` with a table 0357 code and a location
    (``PID-3``) when the message cannot be mapped.
    """
    fn = mapper_for(message)
    ctx = Context(message, options or Options())
    fn(ctx)
    provenance(ctx)
    return ctx.bundle()
