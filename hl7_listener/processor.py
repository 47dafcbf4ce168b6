"""Processing of stored messages, behind the ACK: the inbox is the queue.

The handler acknowledges a message once it is durably in the inbox and hands it here
(:meth:`Processor.submit`). The processor runs the injected ``process`` (mapping + the
services' atomic write) and records the outcome (``processed`` with the resources it
produced, or ``error`` with a reason and 0357 code; reprocessable with ``interop hl7 replay``).

* **Order:** one lane per sender (MSH-3, MSH-4). A lane processes its messages one after
  the other in the order they were received, so an A08 never overtakes its A01; lanes of
  different senders run in parallel on at most ``workers`` threads.
* **Store failures:** a message whose processing or outcome record fails for the store
  stays ``received`` at the head of its lane and is retried with backoff (the lane waits:
  its later messages must not overtake it).
* **Bounded memory:** at most ``max_queued`` messages wait in memory. Beyond that the
  processor is *behind*: it stops queueing what arrives and, once its lanes have room,
  re-reads the inbox (messages without an outcome, in the order received). It leaves that
  state only after a scan during which nothing was turned away, so a message is never
  queued ahead of an older one of its sender that is still only in the inbox.
* **Crash recovery:** :meth:`run` starts *behind*: its first scan picks up whatever an
  earlier run stored but did not finish. The window between processing and its outcome
  record reruns processing once after a crash; processing is idempotent (mappings derive
  resource ids from the message).
* **Exactly once in this process:** a message is processed by one caller at a time (a
  resend waiting for the run in progress), and ids finished recently are remembered so a
  stale scan entry is skipped; scan entries are re-read before they run.
* **Shutdown:** :meth:`close` stops taking work; each lane finishes the message in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from fhir_server.repository.base import StoreError
from fhir_server.repository.inbox import ERROR, PROCESSED, RECEIVED, InboxRecord, Outcome, Pending
from hl7_listener import ack
from hl7_listener.ack import ErrorDetail
from hl7_listener.batching import GroupCommit
from hl7_listener.metrics import Metrics
from mappings.errors import Hl7Error, ParseError
from mappings.message import Message, parse

log = logging.getLogger(__name__)

FINISHED_MEMORY = 100_000
WORKERS = 4
MAX_QUEUED = 10_000
RETRY_PAUSE = 1.0
MAX_RETRY_PAUSE = 30.0


@dataclass(frozen=True)
class ProcessResult:
    """What processing produced: references of the resources written (``Patient/123``)."""

    resources: Sequence[str] = ()


Process = Callable[[Message, InboxRecord], ProcessResult]


def no_processing(message: Message, record: InboxRecord) -> ProcessResult:
    """Store, mark processed, produce nothing (``--process none``)."""
    return ProcessResult()


class Store(Protocol):
    """What processing needs of the inbox (``fhir_server.repository.inbox.MongoInbox``)."""

    def record_outcomes(self, outcomes: Sequence[Outcome]) -> list[bool]: ...

    def pending(
        self, limit: int | None = None, since: datetime | None = None
    ) -> tuple[list[Pending], int]: ...

    def get(self, id: str) -> InboxRecord | None: ...


@dataclass(frozen=True)
class Result:
    """What became of one processing run: ``PROCESSED``, ``ERROR`` (with the error the ACK
    carries) or ``RECEIVED`` (a store failure: nothing recorded, to be retried)."""

    status: str
    error: ErrorDetail | None = None


@dataclass
class _Work:
    id: str
    sender: tuple[str, str]
    record: InboxRecord | None = None  # None: re-read from the inbox before it runs


@dataclass
class _Lane:
    queue: deque[_Work] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class Processor:
    """One per listener process; its methods run on the listener's event loop."""

    def __init__(
        self,
        store: Store,
        process: Process = no_processing,
        *,
        executor: Executor | None = None,
        metrics: Metrics | None = None,
        workers: int = WORKERS,
        max_queued: int = MAX_QUEUED,
        retry_pause: float = RETRY_PAUSE,
    ) -> None:
        self._store = store
        self._process = process
        self._executor = executor
        self.metrics = metrics or Metrics()
        self._workers = workers
        self._max_queued = max_queued
        self._retry_pause = retry_pause
        self._outcomes: GroupCommit[Outcome, bool] = GroupCommit(store.record_outcomes, executor)
        self._in_flight: dict[str, asyncio.Future[Result]] = {}
        self._finished: dict[str, None] = {}  # ids this process finished recently
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._queued: set[str] = set()
        self._slots: asyncio.Semaphore | None = None
        self._behind = False  # True: new work is left in the inbox until a scan catches up
        self._turned_away = 0  # submits not queued since the last scan started
        self._held: list[InboxRecord] | None = None  # during a scan: what arrives meanwhile
        self._pending_in_store = 0  # what the last scan found beyond the queue
        self._wake = asyncio.Event()  # the scanner: processing fell behind
        self._changed = asyncio.Event()  # a lane finished a message or ended
        self._closed = asyncio.Event()
        self._closing = False
        self._publish()

    # -- one run ------------------------------------------------------------------------

    async def run_one(self, message: Message, record: InboxRecord) -> Result:
        """Process a stored message and record its outcome, unless this process is already
        doing so (then wait for that run)."""
        running = self._in_flight.get(record.id)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._in_flight[record.id] = future
        try:
            result = await self._run(message, record)
            future.set_result(result)
            if result.status != RECEIVED:
                self._finished[record.id] = None
                if len(self._finished) > FINISHED_MEMORY:
                    del self._finished[next(iter(self._finished))]
            return result
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, nobody else must log it
            raise
        finally:
            del self._in_flight[record.id]

    async def _run(self, message: Message, record: InboxRecord) -> Result:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            produced = await loop.run_in_executor(self._executor, self._process, message, record)
        except StoreError as exc:
            # Stored but not processed: no outcome, so it is retried.
            self.metrics.errors.labels("store").inc()
            self.metrics.processed.labels("deferred").inc()
            detail = ErrorDetail(ack.APPLICATION_INTERNAL_ERROR, f"stored; processing deferred: {exc}")
            return Result(RECEIVED, detail)
        except Hl7Error as exc:
            return await self._record(record, Result(ERROR, error_detail(exc)), [], exc.reason, exc.code)
        except Exception as exc:
            log.exception("processing message %s failed", record.control_id)
            reason = f"{exc.__class__.__name__}: {exc}"
            detail = ErrorDetail(ack.APPLICATION_INTERNAL_ERROR, reason)
            return await self._record(record, Result(ERROR, detail), [], reason, detail.code)
        finally:
            self.metrics.processing.observe(time.perf_counter() - started)
        return await self._record(record, Result(PROCESSED), list(produced.resources), None, None)

    async def record_unparseable(self, record: InboxRecord, exc: ParseError) -> Result:
        return await self._record(record, Result(ERROR, error_detail(exc)), [], exc.reason, exc.code)

    async def _record(
        self, record: InboxRecord, result: Result, resources: list[str], reason: str | None, code: int | None
    ) -> Result:
        code_sent = "AA" if result.status == PROCESSED else "AE"
        outcome = Outcome(record.id, record.attempts + 1, result.status, resources, code_sent, reason, code)
        try:
            await self._outcomes.submit(outcome)
        except StoreError as exc:
            # Processed, but the outcome is not recorded: retried (idempotently).
            self.metrics.errors.labels("store").inc()
            self.metrics.processed.labels("deferred").inc()
            detail = ErrorDetail(ack.APPLICATION_INTERNAL_ERROR, f"outcome not stored: {exc}")
            return Result(RECEIVED, detail)
        if result.status == ERROR:
            self.metrics.errors.labels("processing").inc()
        self.metrics.processed.labels(result.status).inc()
        return result

    # -- the background queue -----------------------------------------------------------

    @property
    def backlog(self) -> int:
        """Messages received and not yet processed, as far as this process knows."""
        held = len(self._held) if self._held is not None else 0
        return len(self._queued) + self._pending_in_store + self._turned_away + held

    @property
    def idle(self) -> bool:
        """Nothing queued, nothing running, nothing left in the inbox by a scan."""
        return not self._behind and not self._queued and not self._in_flight

    def submit(self, record: InboxRecord) -> None:
        """Queue a stored message for processing (returns at once; never blocks intake)."""
        if self._closing or record.id in self._queued or record.id in self._finished:
            return
        if self._behind and self._held is not None and len(self._held) < self._max_queued:
            self._held.append(record)  # a scan is running: queued after what it finds
        elif self._behind or len(self._queued) >= self._max_queued:
            if not self._behind:
                log.warning("processing is %d messages behind; continuing from the inbox", len(self._queued))
            self._behind = True
            self._turned_away += 1
            self._wake.set()
        else:
            # The parsed message is not kept (it is several times the raw bytes): parsing
            # again costs ~0.1 ms, processing ~100 times that.
            self._enqueue(_Work(record.id, record.sender, record))
        self._publish()

    def _enqueue(self, work: _Work) -> None:
        self._queued.add(work.id)
        lane = self._lanes.get(work.sender)
        if lane is None:
            lane = self._lanes[work.sender] = _Lane()
        lane.queue.append(work)
        if lane.task is None:
            lane.task = asyncio.create_task(self._drain_lane(work.sender, lane))

    async def _drain_lane(self, sender: tuple[str, str], lane: _Lane) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._workers)
        pause = self._retry_pause
        try:
            while lane.queue and not self._closing:
                work = lane.queue[0]
                async with self._slots:
                    if self._closing:
                        break
                    try:
                        done = await self._attempt(work)
                    except Exception:
                        # A defect must not stop the lane (its later messages wait on it).
                        log.exception("processing message %s failed unexpectedly; retrying", work.id)
                        done = False
                if done:
                    lane.queue.popleft()
                    self._queued.discard(work.id)
                    pause = self._retry_pause
                    self._changed.set()
                    self._publish()
                else:
                    work.record = None  # re-read before the retry
                    await self._sleep(pause)
                    pause = min(pause * 2, max(MAX_RETRY_PAUSE, self._retry_pause))
        finally:
            lane.task = None
            if not lane.queue and self._lanes.get(sender) is lane:
                del self._lanes[sender]
            self._changed.set()

    async def _attempt(self, work: _Work) -> bool:
        """Run one queued message; False when a store failure means it must be retried."""
        if work.id in self._finished:
            return True
        record = work.record
        if record is None:
            try:
                record = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._store.get, work.id
                )
            except StoreError as exc:
                log.warning("inbox unreachable, message %s waits: %s", work.id, exc)
                return False
            if record is None or record.status != RECEIVED:
                return True  # gone, or processed elsewhere (a replay, another listener)
        try:
            message = parse(record.raw)
        except ParseError as exc:
            return (await self.record_unparseable(record, exc)).status != RECEIVED
        return (await self.run_one(message, record)).status != RECEIVED

    async def run(self, stop: asyncio.Event) -> None:
        """Scan the inbox at start-up and whenever processing fell behind, until ``stop``."""
        self._behind = True  # an earlier run may have left messages stored but not processed
        delay = self._retry_pause
        while not stop.is_set():
            if not self._behind:
                self._wake.clear()
                await _until(stop, self._wake.wait())
                continue
            while len(self._queued) > self._max_queued // 2 and not stop.is_set():
                self._changed.clear()
                await _until(stop, self._changed.wait())
            if stop.is_set():
                break
            try:
                await self._catch_up()
                delay = self._retry_pause
            except StoreError as exc:
                log.warning("cannot read the inbox (%s); retrying in %.0f s", exc, delay)
                await _until(stop, asyncio.sleep(delay))
                delay = min(delay * 2, max(MAX_RETRY_PAUSE, self._retry_pause))

    async def _catch_up(self) -> None:
        """One scan: queue the oldest unprocessed messages there is room for, then what
        arrived during the scan (newer than anything the scan found from its sender); leave
        the *behind* state if everything fitted and nothing was turned away meanwhile."""
        self._turned_away = 0
        self._held = []
        loop = asyncio.get_running_loop()
        try:
            listed, total = await loop.run_in_executor(self._executor, self._store.pending, None, None)
        except BaseException:
            self._turned_away += len(self._held)
            raise
        finally:
            held, self._held = self._held, None
        room = self._max_queued - len(self._queued)
        fresh = [_Work(p.id, p.sender) for p in listed if self._new(p.id)]
        listed_ids = {w.id for w in fresh}
        fresh += [_Work(r.id, r.sender, r) for r in held if r.id not in listed_ids and self._new(r.id)]
        for work in fresh[:room]:
            self._enqueue(work)
        self._pending_in_store = max(0, len(fresh) - room)
        if len(fresh) <= room and self._turned_away == 0:
            self._behind = False
            if total:
                log.info("queued %d stored message(s) for processing", min(total, room))
        self._publish()

    def _new(self, id: str) -> bool:
        return id not in self._queued and id not in self._in_flight and id not in self._finished

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until :attr:`idle` (tests, benchmarks); False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while not self.idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
        return True

    async def close(self, timeout: float) -> None:
        """Stop taking work; let each lane finish the message in hand (what is still
        queued stays ``received`` in the inbox for the next run)."""
        self._closing = True
        self._closed.set()
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _sleep(self, seconds: float) -> None:
        """Pause before a retry; cut short by :meth:`close`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    def _publish(self) -> None:
        self.metrics.backlog.set(self.backlog)

    # -- operator actions ---------------------------------------------------------------

    async def recover(self, since: datetime | None = None, stop: asyncio.Event | None = None) -> int:
        """Process every stored message without an outcome now, in the order received;
        returns how many. Returns early, between two messages, once ``stop`` is set."""
        loop = asyncio.get_running_loop()
        listed, _ = await loop.run_in_executor(self._executor, self._store.pending, None, since)
        done = 0
        for item in listed:
            if stop is not None and stop.is_set():
                break
            if item.id in self._finished or item.id in self._in_flight:
                continue
            if await self._attempt(_Work(item.id, item.sender)):
                done += 1
        if done:
            log.warning("processed %d stored message(s) left unprocessed by an earlier run", done)
        return done

    async def reprocess(self, record: InboxRecord) -> str:
        """Run a stored message through processing again (``interop hl7 replay``); its new status."""
        try:
            message = parse(record.raw)
        except ParseError as exc:
            await self.record_unparseable(record, exc)
            return ERROR
        result = await self.run_one(message, record)
        return PROCESSED if result.status == PROCESSED else ERROR


def error_detail(exc: Hl7Error) -> ErrorDetail:
    segment = exc.segment or ("MSH" if exc.position == 1 else "")
    return ErrorDetail(exc.code, exc.reason, segment, 1 if segment else exc.position, exc.field)


async def _until(stop: asyncio.Event, waiting: Awaitable[object]) -> None:
    """Wait for ``waiting`` or ``stop``, whichever comes first."""
    tasks = {asyncio.ensure_future(waiting), asyncio.ensure_future(stop.wait())}
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


__all__ = ["Process", "ProcessResult", "Processor", "Result", "error_detail", "no_processing"]
