"""The HL7 v2 inbox: every received message, stored durably before anyone says AA.

One collection, ``hl7_inbox``. A record's ``_id`` is derived from the sender's identity of
the message, (MSH-3 sending application, MSH-4 facility, MSH-10 control id), so storing a
re-sent message collides on the unique ``_id`` index: the insert is the duplicate check, it
is atomic on MongoDB and FerretDB alike, and it is the one lookup FerretDB answers from its
index. Inserts are written with ``w="majority", j=True`` (journaled on a majority; FerretDB
commits to SQLite before it answers), and several intakes may share one ``insert_many``
(group commit) without giving up either property: each document is its own unit.

Intake records are never updated. What became of a message lives in a second collection,
``hl7_outcomes``: one record per finished processing attempt, ``_id = "{inbox id}/{n}"``.
Inserting attempt *n* claims it (the repository's version-claim pattern), and an insert
batched with others costs the embedded store ~0.02 ms where an update costs ~0.8 ms. A
message's status is its newest outcome's: ``received`` (none yet), ``processed`` (with the
references of the resources produced), ``error`` (with a reason; reprocessable).
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from pymongo import DESCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    ExecutionTimeout,
    PyMongoError,
    WTimeoutError,
)
from pymongo.write_concern import WriteConcern

from fhir_server.repository.base import StoreError

COLLECTION = "hl7_inbox"
OUTCOMES = "hl7_outcomes"
RECEIVED, PROCESSED, ERROR = "received", "processed", "error"
STATUSES = (RECEIVED, PROCESSED, ERROR)
_DUPLICATE_KEY = 11000

P = ParamSpec("P")
R = TypeVar("R")


_sequence_lock = threading.Lock()
_last_sequence = 0


def next_sequence() -> int:
    """A strictly increasing number (nanoseconds since the epoch, bumped on ties): the order
    messages were received in, finer than ``rcv`` (milliseconds) and kept across restarts."""
    global _last_sequence
    with _sequence_lock:
        _last_sequence = max(_last_sequence + 1, time.time_ns())
        return _last_sequence


def inbox_id(sending_application: str, sending_facility: str, control_id: str) -> str:
    """Deterministic record id: the same (MSH-3, MSH-4, MSH-10) always gives the same id."""
    key = "\x1f".join((sending_application, sending_facility, control_id)).encode()
    return hashlib.sha256(key).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Intake:
    """What the listener knows about a message when it arrives."""

    raw: bytes
    sending_application: str
    sending_facility: str
    control_id: str
    message_type: str
    received: datetime
    remote: str = ""

    @property
    def id(self) -> str:
        return inbox_id(self.sending_application, self.sending_facility, self.control_id)


@dataclass(frozen=True, slots=True)
class InboxRecord:
    """One stored message and what became of it."""

    id: str
    raw: bytes
    sending_application: str
    sending_facility: str
    control_id: str
    message_type: str
    received: datetime
    remote: str
    status: str
    attempts: int = 0
    error: str | None = None
    error_code: int | None = None
    resources: list[str] = field(default_factory=list)
    ack: str | None = None
    updated: datetime | None = None
    sequence: int = 0

    @property
    def sender(self) -> tuple[str, str]:
        """MSH-3 and MSH-4: messages of one sender are processed in the order received."""
        return (self.sending_application, self.sending_facility)


@dataclass(frozen=True, slots=True)
class Pending:
    """A stored message without an outcome, as a scan lists it (no raw bytes)."""

    id: str
    sender: tuple[str, str]
    sequence: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """One finished processing attempt of one message (attempts count from 1)."""

    id: str
    attempt: int
    status: str
    resources: list[str] = field(default_factory=list)
    ack: str | None = None
    error: str | None = None
    error_code: int | None = None


def _outcome_document(outcome: Outcome) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": f"{outcome.id}/{outcome.attempt}",
        "id": outcome.id,
        "st": outcome.status,
        "res": outcome.resources,
        "ack": outcome.ack,
        "at": datetime.now(UTC),
    }
    if outcome.error is not None:
        doc["err"], doc["code"] = outcome.error, outcome.error_code
    return doc


def _document(intake: Intake) -> dict[str, Any]:
    return {
        "_id": intake.id,
        "raw": intake.raw,
        "app": intake.sending_application,
        "fac": intake.sending_facility,
        "ctl": intake.control_id,
        "type": intake.message_type,
        "rcv": intake.received.replace(microsecond=intake.received.microsecond // 1000 * 1000),
        "remote": intake.remote,
        "seq": next_sequence(),
    }


def _sequence(doc: dict[str, Any]) -> int:
    """The receive order; records stored before ``seq`` existed fall back to ``rcv``."""
    seq = doc.get("seq")
    if isinstance(seq, int):
        return seq
    received = _as_utc(doc.get("rcv"))
    return int(received.timestamp() * 1_000_000) * 1000 if received else 0


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _record(doc: dict[str, Any]) -> InboxRecord:
    received = _as_utc(doc["rcv"])
    assert received is not None
    return InboxRecord(
        id=doc["_id"],
        raw=bytes(doc["raw"]),
        sending_application=doc.get("app", ""),
        sending_facility=doc.get("fac", ""),
        control_id=doc.get("ctl", ""),
        message_type=doc.get("type", ""),
        received=received,
        remote=doc.get("remote", ""),
        status=RECEIVED,
        sequence=_sequence(doc),
    )


def _outages(func: Callable[P, R]) -> Callable[P, R]:
    """Driver failures become :class:`StoreError` (an outage the caller reports and retries)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (ConnectionFailure, ExecutionTimeout, WTimeoutError) as exc:
            raise StoreError(f"document store unreachable: {exc.__class__.__name__}") from exc
        except PyMongoError as exc:
            raise StoreError(f"document store refused the inbox write: {exc}") from exc

    return wrapper


class MongoInbox:
    """Thread-safe; one per listener process. ``timeout_ms`` bounds how long an outage
    blocks an intake before the sender gets its AE."""

    def __init__(self, uri: str, database: str, *, timeout_ms: int = 2000) -> None:
        self._client: MongoClient[dict[str, Any]] = MongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=max(timeout_ms * 5, 10_000),
            uuidRepresentation="standard",
        )
        db = self._client[database]
        durable = WriteConcern(w="majority", j=True)
        self._inbox: Collection[dict[str, Any]] = db.get_collection(COLLECTION, write_concern=durable)
        self._outcomes: Collection[dict[str, Any]] = db.get_collection(OUTCOMES, write_concern=durable)

    # -- intake --------------------------------------------------------------------------

    @_outages
    def receive(self, intake: Intake) -> tuple[InboxRecord, bool]:
        """Store one message durably; ``(record, True)`` when it was already there."""
        return self.receive_many([intake])[0]

    @_outages
    def receive_many(self, intakes: Sequence[Intake]) -> list[tuple[InboxRecord, bool]]:
        """Store several messages in one durable round trip (group commit).

        Each result is ``(record, duplicate)``; a duplicate's record is the one stored first,
        with its current status. Returns only once every new record is durable.
        """
        if not intakes:
            return []
        documents = [_document(i) for i in intakes]
        duplicates = _inserted(self._inbox, documents)
        results: list[tuple[InboxRecord, bool]] = []
        for index, document in enumerate(documents):
            if index in duplicates:
                existing = self._inbox.find_one({"_id": document["_id"]})
                results.append((self._with_outcome(existing or document), True))
            else:
                results.append((_record(document), False))
        return results

    # -- outcomes ------------------------------------------------------------------------

    @_outages
    def record_outcomes(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Store processing outcomes in one durable round trip; ``False`` for an attempt
        number someone else recorded first (a concurrent processor of the same message)."""
        if not outcomes:
            return []
        documents = [_outcome_document(o) for o in outcomes]
        claimed = _inserted(self._outcomes, documents)
        return [i not in claimed for i in range(len(documents))]

    def mark_processed(self, record: InboxRecord, resources: Sequence[str], ack: str | None = None) -> bool:
        return self.record_outcomes(
            [Outcome(record.id, record.attempts + 1, PROCESSED, list(resources), ack)]
        )[0]

    def mark_error(
        self, record: InboxRecord, reason: str, code: int | None = None, ack: str | None = None
    ) -> bool:
        outcome = Outcome(record.id, record.attempts + 1, ERROR, [], ack, reason, code)
        return self.record_outcomes([outcome])[0]

    # -- reads ---------------------------------------------------------------------------

    @_outages
    def get(self, id: str) -> InboxRecord | None:
        doc = self._inbox.find_one({"_id": id})
        return None if doc is None else self._with_outcome(doc)

    @_outages
    def list_recent(
        self, status: str | None = None, since: datetime | None = None, limit: int = 50
    ) -> list[InboxRecord]:
        """Newest first. Scans (FerretDB answers only ``_id`` filters from an index): for operators."""
        query: dict[str, Any] = {} if since is None else {"rcv": {"$gte": since}}
        found: list[InboxRecord] = []
        for doc in self._inbox.find(query, sort=[("rcv", DESCENDING)]):
            record = self._with_outcome(doc)
            if status is None or record.status == status:
                found.append(record)
                if len(found) >= limit:
                    break
        return found

    @_outages
    def unprocessed(self, since: datetime | None = None) -> list[InboxRecord]:
        """Messages stored but never processed (a crash between intake and outcome), in the
        order received."""
        records = (self._inbox.find_one({"_id": p.id}) for p in self.pending(since=since)[0])
        return [_record(d) for d in records if d is not None]

    @_outages
    def pending(self, limit: int | None = None, since: datetime | None = None) -> tuple[list[Pending], int]:
        """The first ``limit`` messages without an outcome, in the order received, and how
        many there are in all. Two scans (FerretDB answers only ``_id`` filters from an
        index), projected to a few small fields."""
        query: dict[str, Any] = {} if since is None else {"rcv": {"$gte": since}}
        done = {d["id"] for d in self._outcomes.find({}, {"id": 1})}
        found = [
            Pending(d["_id"], (d.get("app", ""), d.get("fac", "")), _sequence(d))
            for d in self._inbox.find(query, {"_id": 1, "app": 1, "fac": 1, "seq": 1, "rcv": 1})
            if d["_id"] not in done
        ]
        found.sort(key=lambda p: (p.sequence, p.id))
        return (found if limit is None else found[:limit]), len(found)

    def _with_outcome(self, doc: dict[str, Any]) -> InboxRecord:
        """The record with its newest outcome: attempts are probed by ``_id`` 1, 2, ..."""
        latest: dict[str, Any] | None = None
        attempt = 0
        while (found := self._outcomes.find_one({"_id": f"{doc['_id']}/{attempt + 1}"})) is not None:
            latest, attempt = found, attempt + 1
        record = _record(doc)
        if latest is None:
            return record
        return replace(
            record,
            status=latest["st"],
            attempts=attempt,
            error=latest.get("err"),
            error_code=latest.get("code"),
            resources=list(latest.get("res", [])),
            ack=latest.get("ack"),
            updated=_as_utc(latest.get("at")),
        )

    # -- lifecycle -----------------------------------------------------------------------

    @_outages
    def ping(self) -> None:
        self._client.admin.command("ping")

    def drop(self) -> None:
        """Remove every record (tests and benchmarks)."""
        self._inbox.drop()
        self._outcomes.drop()

    def close(self) -> None:
        self._client.close()


def _inserted(collection: Collection[dict[str, Any]], documents: list[dict[str, Any]]) -> set[int]:
    """Insert unordered; return the indexes that collided with an existing ``_id``."""
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        others = [e for e in errors if e.get("code") != _DUPLICATE_KEY]
        if others or exc.details.get("writeConcernErrors"):
            raise StoreError(f"inbox write failed: {others or exc.details['writeConcernErrors']}") from exc
        return {int(e["index"]) for e in errors}
    return set()


__all__ = [
    "COLLECTION",
    "ERROR",
    "OUTCOMES",
    "PROCESSED",
    "RECEIVED",
    "STATUSES",
    "InboxRecord",
    "Intake",
    "MongoInbox",
    "Outcome",
    "Pending",
    "StoreError",
    "inbox_id",
]
