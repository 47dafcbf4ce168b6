"""Group commit: concurrent writers in one process share the store commands of one batch.

The embedded store spends about as much on one insert command as on eight documents
inside one ``insert_many``, so request threads that write at the same moment are served
together: the first thread to arrive runs its batch at once (no added latency when
traffic is light); threads arriving while that batch runs queue up, and when it returns
the first of them runs everything queued (the leader hand-off of database group commit).
Each caller still gets its own answer, or the error that failed the batch.

``GroupInsert`` shares one unordered ``insert_many`` of a collection: each caller learns
which of its documents were duplicates of an existing ``_id``; one caller's duplicate
never blocks another's documents. The repository also groups whole first versions
(postings, claim and head: three commands for a batch instead of three per create).

A caller returns only after its batch's commands have returned: durability and the
order of a caller's own writes are what they would be with its own commands.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000
MAX_BATCH = 1000

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(eq=False)
class _Submission(Generic[Item, Result]):
    item: Item
    size: int
    ready: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    result: Result | None = None
    error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Thread-safe. ``run_batch`` gets the queued items in arrival order and returns one
    result per item; whatever it raises is raised to every caller of the batch."""

    def __init__(
        self,
        run_batch: Callable[[list[Item]], list[Result]],
        *,
        size: Callable[[Item], int] = lambda _: 1,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._run_batch = run_batch
        self._size = size
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Submission[Item, Result]] = []
        self._busy = False

    def submit(self, item: Item) -> Result:
        mine: _Submission[Item, Result] = _Submission(item, self._size(item))
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
        return mine.result  # type: ignore[return-value]  # set by the batch that ran it

    def _lead(self) -> None:
        """Run what is queued (our own submission with it), then hand over."""
        with self._lock:
            batch: list[_Submission[Item, Result]] = []
            count = 0
            while self._queue and (not batch or count + self._queue[0].size <= self._max_batch):
                batch.append(self._queue.pop(0))
                count += batch[-1].size
        try:
            results = self._run_batch([submission.item for submission in batch])
            for submission, result in zip(batch, results, strict=True):
                submission.result = result
        except BaseException as exc:
            for submission in batch:
                submission.error = exc
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


class GroupInsert:
    """One ``insert_many`` shared by concurrent inserts into a collection."""

    def __init__(self, collection: Collection[dict[str, Any]]) -> None:
        self._group: GroupCommit[Sequence[dict[str, Any]], set[int]] = GroupCommit(
            functools.partial(duplicates_by_caller, collection), size=len
        )

    def insert(self, docs: Sequence[dict[str, Any]]) -> set[int]:
        """Insert ``docs``; the positions of those whose ``_id`` was already taken.
        Raises what the store raised for any other failure."""
        if not docs:
            return set()
        return self._group.submit(docs)


def duplicates_by_caller(
    collection: Collection[dict[str, Any]], batch: Sequence[Sequence[dict[str, Any]]]
) -> list[set[int]]:
    """Insert every caller's documents in one unordered command; per caller, the positions
    of its documents whose ``_id`` was taken. Any other write error is raised."""
    docs = [doc for docs in batch for doc in docs]
    found: list[set[int]] = [set() for _ in batch]
    if not docs:
        return found
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        owners = [(n, i) for n, docs in enumerate(batch) for i in range(len(docs))]
        for e in errors:
            caller, position = owners[e["index"]]
            found[caller].add(position)
    return found
