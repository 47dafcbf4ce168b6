"""The background processor's queueing rules, against an in-memory inbox: order per sender,
parallel senders, the bounded queue and its catch-up from the inbox, retries."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from fhir_server.repository.base import StoreError
from fhir_server.repository.inbox import (
    PROCESSED,
    RECEIVED,
    InboxRecord,
    Outcome,
    Pending,
    inbox_id,
    next_sequence,
)
from hl7_listener.processor import Processor, ProcessResult
from mappings.message import Message


def adt(sender: str, control_id: str) -> bytes:
    return (
        f"MSH|^~\\&|{sender}|HOSP|EHR|MAIN|20240101120000||ADT^A01^ADT_A01|{control_id}|P|2.5.1\r"
        f"PID|1||MRN1^^^HOSP^MR||Doe^Jane\r"
    ).encode()


class MemoryInbox:
    """Just enough of MongoInbox; ``down`` makes every call fail like an outage."""

    def __init__(self) -> None:
        self.records: dict[str, InboxRecord] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.down = False
        self.refused = 0
        self.lock = threading.Lock()

    def store(self, sender: str, control_id: str) -> InboxRecord:
        record = InboxRecord(
            id=inbox_id(sender, "HOSP", control_id),
            raw=adt(sender, control_id),
            sending_application=sender,
            sending_facility="HOSP",
            control_id=control_id,
            message_type="ADT^A01",
            received=datetime.now(UTC),
            remote="test",
            status=RECEIVED,
            sequence=next_sequence(),
        )
        self.records[record.id] = record
        return record

    def _check(self) -> None:
        if self.down:
            self.refused += 1
            raise StoreError("store down")

    def record_outcomes(self, outcomes: Sequence[Outcome]) -> list[bool]:
        self._check()
        with self.lock:
            claimed = []
            for outcome in outcomes:
                key = f"{outcome.id}/{outcome.attempt}"
                claimed.append(key not in self.outcomes)
                self.outcomes.setdefault(key, outcome)
            return claimed

    def pending(self, limit: int | None = None, since: datetime | None = None) -> tuple[list[Pending], int]:
        self._check()
        with self.lock:
            done = {o.id for o in self.outcomes.values()}
            found = sorted(
                (Pending(r.id, r.sender, r.sequence) for r in self.records.values() if r.id not in done),
                key=lambda p: p.sequence,
            )
        return (found if limit is None else found[:limit]), len(found)

    def get(self, id: str) -> InboxRecord | None:
        self._check()
        record = self.records.get(id)
        with self.lock:
            attempts = [o for key, o in self.outcomes.items() if o.id == id]
        if record is None or not attempts:
            return record
        return replace(record, status=attempts[-1].status, attempts=len(attempts))


class Recorder:
    """Processing that records the order it ran messages in; ``hold`` blocks one control id."""

    def __init__(self, hold: str | None = None) -> None:
        self.order: list[str] = []
        self.hold = hold
        self.entered = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, message: Message, record: InboxRecord) -> ProcessResult:
        if message.control_id == self.hold:
            self.entered.set()
            assert self.release.wait(10)
        with self.lock:
            self.order.append(message.control_id)
        return ProcessResult([f"Patient/{message.control_id}"])


async def until(condition: object, timeout: float = 10.0) -> None:
    """Poll a condition on the loop with a deadline (lets the processor's tasks run)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.005)


def test_one_sender_in_order_while_other_senders_proceed() -> None:
    inbox = MemoryInbox()
    work = Recorder(hold="A1")

    async def go() -> None:
        processor = Processor(inbox, work, workers=4)
        for control_id in ("A1", "A2", "A3"):
            processor.submit(inbox.store("A", control_id))
        await until(work.entered.is_set)
        for control_id in ("B1", "B2"):
            processor.submit(inbox.store("B", control_id))
        # A1 is held: A2 and A3 wait behind it, B's messages do not.
        await until(lambda: processor.backlog == 3)  # B1 and B2 done
        assert work.order == ["B1", "B2"]
        work.release.set()
        assert await processor.wait_idle(10)
        assert processor.backlog == 0

    asyncio.run(go())
    assert work.order == ["B1", "B2", "A1", "A2", "A3"]
    assert {o.status for o in inbox.outcomes.values()} == {PROCESSED}


def test_a_full_queue_leaves_work_in_the_inbox_and_catches_up_in_order() -> None:
    inbox = MemoryInbox()
    work = Recorder(hold="M0")

    async def go() -> None:
        stop = asyncio.Event()
        processor = Processor(inbox, work, workers=2, max_queued=3)
        scanner = asyncio.create_task(processor.run(stop))
        await until(lambda: processor.idle)  # the start-up scan found nothing
        processor.submit(inbox.store("A", "M0"))
        await until(work.entered.is_set)
        for n in range(1, 12):
            processor.submit(inbox.store("A", f"M{n}"))
            assert len(processor._queued) <= 3  # bounded: the rest stays in the inbox only
        assert processor.backlog == 12
        work.release.set()
        assert await processor.wait_idle(10)
        stop.set()
        await scanner

    asyncio.run(go())
    assert work.order == [f"M{n}" for n in range(12)]
    assert len(inbox.outcomes) == 12


def test_start_up_scan_processes_what_an_earlier_run_left_in_order() -> None:
    inbox = MemoryInbox()
    for n in range(5):
        inbox.store("A", f"OLD{n}")
    work = Recorder()

    async def go() -> None:
        stop = asyncio.Event()
        processor = Processor(inbox, work)
        scanner = asyncio.create_task(processor.run(stop))
        await asyncio.sleep(0)
        processor.submit(inbox.store("A", "NEW"))  # arrives during the start-up scan
        assert await processor.wait_idle(10)
        stop.set()
        await scanner

    asyncio.run(go())
    assert work.order == ["OLD0", "OLD1", "OLD2", "OLD3", "OLD4", "NEW"]


def test_a_store_failure_holds_the_sender_and_is_retried() -> None:
    inbox = MemoryInbox()
    work = Recorder()

    async def go() -> None:
        processor = Processor(inbox, work, retry_pause=0.01)
        inbox.down = True
        processor.submit(inbox.store("A", "S1"))
        processor.submit(inbox.store("A", "S2"))
        await until(lambda: processor.metrics.processed.labels("deferred")._value.get() >= 1)
        await until(lambda: inbox.refused >= 4)  # retried (re-read first) while the store is down
        assert inbox.outcomes == {}
        assert work.order == ["S1"]  # S2 waits behind S1
        inbox.down = False
        assert await processor.wait_idle(10)

    asyncio.run(go())
    # S1's processing ran, its outcome could not be stored; it ran again before S2.
    assert work.order[-2:] == ["S1", "S2"]
    assert all(c == "S1" for c in work.order[:-2])
    assert sorted(o.attempt for o in inbox.outcomes.values()) == [1, 1]


def test_close_finishes_the_message_in_hand_and_leaves_the_rest() -> None:
    inbox = MemoryInbox()
    work = Recorder(hold="C1")

    async def go() -> None:
        processor = Processor(inbox, work)
        for control_id in ("C1", "C2"):
            processor.submit(inbox.store("A", control_id))
        await until(work.entered.is_set)
        closing = asyncio.create_task(processor.close(10))
        await asyncio.sleep(0)
        processor.submit(inbox.store("A", "C3"))  # no new work once closing
        work.release.set()
        await closing

    asyncio.run(go())
    assert work.order == ["C1"]
    assert [o.id for o in inbox.outcomes.values()] == [inbox_id("A", "HOSP", "C1")]


def test_messages_arriving_during_a_scan_follow_it_without_another_scan() -> None:
    class SlowScan(MemoryInbox):
        def __init__(self) -> None:
            super().__init__()
            self.scans = 0
            self.scanning = threading.Event()
            self.finish = threading.Event()

        def pending(
            self, limit: int | None = None, since: datetime | None = None
        ) -> tuple[list[Pending], int]:
            self.scans += 1
            found = super().pending(limit, since)
            self.scanning.set()
            assert self.finish.wait(10)
            return found

    inbox = SlowScan()
    for n in range(3):
        inbox.store("A", f"OLD{n}")
    work = Recorder()

    async def go() -> None:
        stop = asyncio.Event()
        processor = Processor(inbox, work)
        scanner = asyncio.create_task(processor.run(stop))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, inbox.scanning.wait, 10)
        for n in range(3):  # traffic goes on while the start-up scan runs
            processor.submit(inbox.store("A", f"NEW{n}"))
        inbox.finish.set()
        assert await processor.wait_idle(10)
        stop.set()
        await scanner

    asyncio.run(go())
    assert work.order == ["OLD0", "OLD1", "OLD2", "NEW0", "NEW1", "NEW2"]
    assert inbox.scans == 1  # caught up at once, not behind for as long as traffic flows
