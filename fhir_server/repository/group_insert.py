"""Group insert: concurrent writers in one process share one ``insert_many``.

The embedded store spends about as much on one insert command as on eight documents
inside one ``insert_many``, so request threads that insert into the same collection at
the same moment are served by one command: the first thread to arrive inserts at once
(no added latency when traffic is light); threads arriving while that command runs
queue up, and when it returns the first of them inserts everything queued (the leader
hand-off of database group commit). Each caller still gets its own answer: which of its
documents were duplicates of an existing ``_id``, or the error that failed the command.
Inserts are unordered, so one caller's duplicate never blocks another's documents.

A caller returns only after its documents' command has returned: durability and the
order of a caller's own writes are what they would be with its own ``insert_many``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000
MAX_BATCH = 1000


@dataclass(eq=False)
class _Submission:
    docs: Sequence[dict[str, Any]]
    ready: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    duplicates: set[int] = field(default_factory=set)
    error: BaseException | None = None


class GroupInsert:
    """Thread-safe; one per collection and process."""

    def __init__(self, collection: Collection[dict[str, Any]]) -> None:
        self._collection = collection
        self._lock = threading.Lock()
        self._queue: list[_Submission] = []
        self._busy = False

    def insert(self, docs: Sequence[dict[str, Any]]) -> set[int]:
        """Insert ``docs``; the positions of those whose ``_id`` was already taken.
        Raises what the store raised for any other failure."""
        if not docs:
            return set()
        mine = _Submission(docs)
        with self._lock:
            self._queue.append(mine)
            leading = not self._busy
            self._busy = True
        if not leading:
            mine.ready.wait()
        if leading or mine.lead:
            self._lead()
        if mine.error is not None:
            raise mine.error
        return mine.duplicates

    def _lead(self) -> None:
        """Insert what is queued (our own submission with it), then hand over."""
        with self._lock:
            batch: list[_Submission] = []
            count = 0
            while self._queue and (not batch or count + len(self._queue[0].docs) <= MAX_BATCH):
                batch.append(self._queue.pop(0))
                count += len(batch[-1].docs)
        try:
            self._insert(batch)
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.ready.set()
                else:
                    self._busy = False
            for submission in batch:
                submission.ready.set()

    def _insert(self, batch: list[_Submission]) -> None:
        docs = [doc for submission in batch for doc in submission.docs]
        try:
            self._collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                for submission in batch:
                    submission.error = exc
                return
            owners = [(s, i) for s in batch for i in range(len(s.docs))]
            for e in errors:
                submission, position = owners[e["index"]]
                submission.duplicates.add(position)
        except BaseException as exc:
            for submission in batch:
                submission.error = exc
