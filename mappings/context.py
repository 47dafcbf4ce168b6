"""One message's mapping state: options, provenance text, and the bundle being built.

Mapping functions receive a :class:`Context` and add resources through it, so that identity
(fullUrl, conditional request) and traceability (``meta.source``) are decided in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from mappings.ids import full_url, identifier_query, local_system
from mappings.message import Message


@dataclass(frozen=True)
class Options:
    """What a mapping needs to know that the message does not say.

    ``timezone``: the facility's IANA zone, applied to HL7 times sent without an offset
    (never the server's zone). ``inbox_id``: the id of the stored inbound message, named as
    the Provenance entity so a value can be traced to the bytes it came from.
    """

    timezone: str = "UTC"
    inbox_id: str | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass
class Entry:
    """One Bundle entry: the resource, its fullUrl and the transaction request."""

    full_url: str
    resource: dict[str, Any]
    request: dict[str, str]


@dataclass
class Context:
    """The message being mapped, its options and the entries produced so far (in order)."""

    message: Message
    options: Options = field(default_factory=Options)
    entries: dict[str, Entry] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return self.options.zone

    @property
    def sender(self) -> str:
        """The sending application and facility (their first components) as ``app|facility``."""
        h = self.message.header
        return f"{h.get(3) or h.get(3, component=2)}|{h.get(4) or h.get(4, component=2)}"

    @property
    def source(self) -> str:
        """``meta.source`` of every resource: ``urn:hl7v2:<app>|<facility>#<MSH-10>``."""
        return (
            "urn:hl7v2:"
            + quote(self.sender, safe="|-._~:")
            + "#"
            + quote(self.message.control_id, safe="-._~")
        )

    @property
    def default_system(self) -> str:
        """The system for identifiers without an assigning authority: the sender's namespace."""
        h = self.message.header
        return local_system(h.get(4) or h.get(3) or "unknown-sender")

    def _stamp(self, resource: dict[str, Any]) -> dict[str, Any]:
        meta = dict(resource.get("meta") or {})
        meta["source"] = self.source
        return {"resourceType": resource["resourceType"], "meta": meta} | {
            k: v for k, v in resource.items() if k not in ("resourceType", "meta")
        }

    def put(self, resource: dict[str, Any], system: str, value: str) -> str:
        """Add ``resource`` as a conditional update on ``identifier=system|value``; its fullUrl.

        A second resource with the same identity in the same message replaces the first
        (a message may name the same practitioner twice).
        """
        rtype = resource["resourceType"]
        url = full_url(rtype, system, value)
        request = {"method": "PUT", "url": f"{rtype}?{identifier_query(system, value)}"}
        self.entries[url] = Entry(url, self._stamp(resource), request)
        return url

    def ensure(self, resource: dict[str, Any], system: str, value: str) -> str:
        """Add ``resource`` as a conditional create (``ifNoneExist``): referenced, never overwritten.

        For things a message only points at (the patient of a lab result, the ordering
        doctor): created if the server has none, left as they are otherwise.
        """
        rtype = resource["resourceType"]
        url = full_url(rtype, system, value)
        if url in self.entries:
            return url
        request = {"method": "POST", "url": rtype, "ifNoneExist": identifier_query(system, value)}
        self.entries[url] = Entry(url, self._stamp(resource), request)
        return url

    def put_by_id(self, resource: dict[str, Any], resource_id: str) -> str:
        """Add ``resource`` as an update (or create) of ``Type/<resource_id>``, a deterministic id.

        For resources with no business identifier to search on (Provenance). Returns the
        relative reference; the entry has no ``urn:uuid`` fullUrl since its id is literal.
        """
        rtype = resource["resourceType"]
        key = f"{rtype}/{resource_id}"
        body = self._stamp(resource | {"id": resource_id})
        self.entries[key] = Entry("", body, {"method": "PUT", "url": key})
        return key

    def bundle(self) -> dict[str, Any]:
        """The transaction Bundle of every entry, in the order they were first added."""
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [_entry(e) for e in self.entries.values()],
        }


def _entry(entry: Entry) -> dict[str, Any]:
    """A Bundle entry; an entry addressed by a literal id has no ``urn:uuid`` fullUrl."""
    if entry.full_url:
        return {"fullUrl": entry.full_url, "resource": entry.resource, "request": entry.request}
    return {"resource": entry.resource, "request": entry.request}
