"""The Provenance of one message: every resource it produced, traced to the message and its sender.

One per message, at a deterministic id (uuid5 of ``meta.source``), so a re-sent message
updates its Provenance instead of adding one. ``entity`` names the stored inbound message
(the inbox id when the listener gives one, else the control id); ``agent`` the sending
facility and application.
"""

from __future__ import annotations

from typing import Any

from mappings.context import Context
from mappings.datatypes.times import Where, date_time
from mappings.errors import REQUIRED_FIELD_MISSING, MappingError
from mappings.ids import local_system, resource_id

INBOX_SYSTEM = "urn:interop:hl7v2-inbox"
MESSAGE_SYSTEM = "urn:hl7v2:message"  # value: <sending app>|<sending facility>#<MSH-10>
_AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def provenance(ctx: Context) -> None:
    """Add the Provenance whose targets are every entry added so far."""
    message = ctx.message
    targets = [{"reference": url} for url in ctx.entries]
    if not targets:
        return
    recorded = date_time(_at_least_minutes(message.timestamp), ctx.zone, Where("MSH", 7), instant=True)
    if not recorded:
        raise MappingError(REQUIRED_FIELD_MISSING, "MSH-7 date/time of message is missing", "MSH", 7)
    facility = message.header.get(4) or message.header.get(3)
    if ctx.options.inbox_id:
        what = {"identifier": {"system": INBOX_SYSTEM, "value": ctx.options.inbox_id}}
    else:
        what = {"identifier": {"system": MESSAGE_SYSTEM, "value": f"{ctx.sender}#{message.control_id}"}}
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": targets,
        "recorded": recorded,
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0003",
                    "code": message.trigger_event or message.message_type,
                }
            ],
            "text": f"{message.message_type}^{message.trigger_event}",
        },
        "agent": [
            {
                "type": {"coding": [{"system": _AGENT_TYPE, "code": "author"}]},
                "who": {
                    "identifier": {"system": local_system("hl7v2-sender"), "value": facility or "unknown"},
                    "display": ctx.sender,
                },
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": what
                | {"display": f"HL7 v2 {message.message_type}^{message.trigger_event} {message.control_id}"},
            }
        ],
    }
    ctx.put_by_id(resource, resource_id("Provenance", ctx.source))


def _at_least_minutes(stamp: str) -> str:
    """MSH-7 sent as a bare date (allowed before v2.5) taken as midnight: ``recorded`` is an instant."""
    digits = len(stamp) - len(stamp.lstrip("0123456789"))
    return stamp[:8] + "0000" + stamp[8:] if digits == 8 else stamp
