"""The HL7 inbox as the console shows it: filtered lists, one message, reprocessing, rates.

The store (``repository/inbox.py``, the listener's) answers recent messages newest first
by a scan (FerretDB serves only ``_id`` lookups from an index); the filters the console
adds on top (type, sender, until) are applied here, within ``SCAN_LIMIT`` messages.
Reprocessing is injected: the listener's handler with the configured processing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from fhir_server import outcomes
from fhir_server.repository.inbox import InboxRecord

SCAN_LIMIT = 20_000
SEGMENT_SEPARATORS = ("\r\n", "\n", "\r")


class InboxStore(Protocol):
    def get(self, id: str) -> InboxRecord | None: ...

    def list_recent(
        self, status: str | None = None, since: datetime | None = None, limit: int = 50
    ) -> list[InboxRecord]: ...

    def close(self) -> None: ...


Reprocess = Callable[[InboxRecord], str]


@dataclass(frozen=True)
class Field:
    name: str  # PID-3
    value: str


@dataclass(frozen=True)
class Segment:
    name: str
    text: str
    fields: list[Field]


def segments(raw: bytes) -> list[Segment]:
    """The message cut into segments and numbered fields (MSH-1 is the field separator)."""
    text = raw.decode("utf-8", errors="replace")
    for separator in SEGMENT_SEPARATORS:
        text = text.replace(separator, "\r")
    found = []
    for line in filter(None, text.split("\r")):
        name = line[:3]
        bar = line[3:4] or "|"
        values = line[4:].split(bar)
        if name == "MSH":
            values = [bar, *values]
        fields = [Field(f"{name}-{i}", v) for i, v in enumerate(values, 1) if v]
        found.append(Segment(name, line, fields))
    return found


class InboxService:
    def __init__(self, store: InboxStore, reprocess: Reprocess) -> None:
        self._store = store
        self._reprocess = reprocess

    def close(self) -> None:
        self._store.close()

    def search(
        self,
        *,
        status: str | None = None,
        message_type: str | None = None,
        sender: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[InboxRecord]:
        found = []
        for record in self._store.list_recent(status or None, since, SCAN_LIMIT):
            if message_type and not record.message_type.upper().startswith(message_type.upper()):
                continue
            who = f"{record.sending_application}/{record.sending_facility}".upper()
            if sender and sender.upper() not in who:
                continue
            if until and record.received >= until:
                continue
            found.append(record)
            if len(found) >= limit:
                break
        return found

    def get(self, id: str) -> InboxRecord:
        record = self._store.get(id) if id.isalnum() else None
        if record is None:
            raise outcomes.NotFound(f"No HL7 message '{id}' in the inbox")
        return record

    def reprocess(self, ids: list[str]) -> dict[str, str]:
        """Run messages through processing again; their new status by id."""
        return {id: self._reprocess(self.get(id)) for id in ids}

    def summary(self, now: datetime | None = None, hours: int = 24) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
        records = self._store.list_recent(None, start, SCAN_LIMIT)
        labels = [(start + timedelta(hours=h)).strftime("%d %H:00") for h in range(hours)]
        per_hour, errors = Counter[str](), Counter[str]()
        for record in records:
            label = record.received.astimezone(UTC).strftime("%d %H:00")
            per_hour[label] += 1
            errors[label] += record.status == "error"
        return {
            "total": len(records),
            "by_status": dict(sorted(Counter(r.status for r in records).items())),
            "by_ack": dict(sorted(Counter(r.ack or "none yet" for r in records).items())),
            "by_type": dict(Counter(r.message_type for r in records).most_common(10)),
            "hours": labels,
            "per_hour": [per_hour[label] for label in labels],
            "errors_per_hour": [errors[label] for label in labels],
        }
