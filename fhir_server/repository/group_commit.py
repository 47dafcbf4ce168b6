"""Group commit for request threads: concurrent callers share one batched insert.

On the embedded store every insert command costs about 1 ms of store CPU whatever it
carries, while a document inside an ``insert_many`` costs about an eighth of that. A
request that must store a record before it answers (a CDS card's evaluation record)
hands its documents to :meth:`GroupCommit.submit`, which returns once they are stored:
the durability of the old per-request insert, at the price of batched ones.

One writer thread per process takes everything pending, stores it with one call of
``write`` and wakes the callers of that batch. The first item after a quiet period is
written at once (no added latency at low load); items arriving while a write runs go
together in the next one, so batches grow with the load by themselves.

Failure is explicit: when ``write`` raises, every caller of that batch gets
:class:`~fhir_server.outcomes.StoreUnavailable` (a 503) and nothing of theirs is reported
stored; the next batch tries the store again. A document ``write`` reports as not stored
fails only its own caller, with the error ``write`` gave (a duplicate ``_id`` can be a
Conflict the caller expects). The queue is bounded: past
``max_pending`` queued items a caller is refused at once (503) instead of waiting behind
a store that is not keeping up; a caller whose batch is not stored within ``timeout``
seconds gets a 503 too (its documents may still be written later, as with any write
whose acknowledgement is lost). :meth:`close` writes what is queued, then stops the
writer; a call after it writes inline.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir_server import outcomes

log = logging.getLogger("fhir_server.group_commit")

Document = dict[str, Any]
# Stores the documents of one batch. Returns the error of each document (by its position
# in the batch) that was not stored, e.g. a Conflict for a duplicate ``_id`` where that
# means something to the caller, or raises when none were stored.
Write = Callable[[list[Document]], Mapping[int, outcomes.FhirError]]


@dataclass
class _Waiting:
    documents: list[Document]
    done: threading.Event = field(default_factory=threading.Event)
    error: outcomes.FhirError | None = None


class GroupCommit:
    def __init__(
        self,
        write: Write,
        *,
        name: str,
        max_batch: int = 500,
        max_pending: int = 2000,
        timeout: float = 15.0,
    ) -> None:
        self._write = write
        self._name = name
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._timeout = timeout
        self._condition = threading.Condition()
        self._pending: list[_Waiting] = []
        self._queued = 0  # documents in _pending
        self._writer: threading.Thread | None = None
        self._writer_pid = 0
        self._closed = False
        self._atexit = False
        self.batches = 0  # writes done (for tests and benchmarks)

    def submit(self, documents: list[Document]) -> None:
        """Store ``documents``; returns once they are stored (503 when they cannot be)."""
        if not documents:
            return
        waiting = _Waiting(documents)
        with self._condition:
            closed = self._closed
            if not closed:
                if self._queued + len(documents) > self._max_pending:
                    raise outcomes.StoreUnavailable(
                        f"Too many {self._name} records are waiting for the store; retry later"
                    )
                self._pending.append(waiting)
                self._queued += len(documents)
                self._ensure_writer()
                self._condition.notify()
        if closed:  # after close(): no writer, store it here
            self._store([waiting])
        elif not waiting.done.wait(self._timeout):
            raise outcomes.StoreUnavailable(
                f"The store did not confirm the {self._name} record in {self._timeout:g} s; retry later"
            )
        if waiting.error is not None:  # one exception per caller: each raise has its own traceback
            raise type(waiting.error)(waiting.error.diagnostics) from waiting.error.__cause__

    def close(self, timeout: float = 30.0) -> None:
        """Store what is queued, then stop the writer (a worker's exit; idempotent)."""
        with self._condition:
            self._closed = True
            writer = self._writer if self._writer_pid == os.getpid() else None
            self._condition.notify_all()
        if writer is not None:
            writer.join(timeout)
        with self._condition:
            left, self._pending, self._queued = self._pending, [], 0
        if left:  # the writer never ran in this process (or did not finish in time)
            self._store(left)

    def _ensure_writer(self) -> None:
        # Under the lock. A forked worker inherits the object but not the thread.
        if self._writer is None or self._writer_pid != os.getpid() or not self._writer.is_alive():
            self._writer = threading.Thread(target=self._run, name=f"{self._name}-writer", daemon=True)
            self._writer_pid = os.getpid()
            self._writer.start()
            if not self._atexit:
                self._atexit = True
                atexit.register(self.close)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._closed:
                    self._condition.wait()
                if not self._pending:
                    return
                batch: list[_Waiting] = []
                size = 0
                while self._pending and (
                    not batch or size + len(self._pending[0].documents) <= self._max_batch
                ):
                    taken = self._pending.pop(0)
                    batch.append(taken)
                    size += len(taken.documents)
                self._queued -= size
            self._store(batch)

    def _store(self, batch: list[_Waiting]) -> None:
        documents = [d for w in batch for d in w.documents]
        errors: dict[int, outcomes.FhirError]
        try:
            errors = dict(self._write(documents))
        except outcomes.FhirError as exc:
            errors = dict.fromkeys(range(len(documents)), exc)
        except Exception as exc:  # the driver's errors, or a bug: the callers must not hang
            error = outcomes.StoreUnavailable("The document store is unavailable; retry later")
            error.__cause__ = exc
            errors = dict.fromkeys(range(len(documents)), error)
        lost = [e for e in errors.values() if isinstance(e, outcomes.StoreUnavailable)]
        if lost:
            log.error("%d of %d %s record(s) not stored: %s", len(lost), len(documents), self._name, lost[0])
        self.batches += 1
        start = 0
        for waiting in batch:
            end = start + len(waiting.documents)
            waiting.error = next((errors[i] for i in range(start, end) if i in errors), None)
            start = end
            waiting.done.set()
