"""One frame in, one reply out: parse, store durably, process, acknowledge. No sockets.

The order is the listener's promise to senders:

1. **Parse** the header (lean tokenizer). A message that cannot be read, or lacks the
   MSH-10 its identity rests on, is rejected (AR/CR with an ERR) and not stored.
2. **Durable intake**: the raw bytes go into the inbox (group-committed, journaled). Until
   that returns nothing positive is said; if the store is down the sender gets AE/CE with
   ERR 207 (or, configured, the connection is closed without an answer) and resends later.
3. **Process** the stored message through the injected ``process`` (mapping + the
   services' atomic write; by default nothing) and record its outcome.
4. **Acknowledge**: original mode AA after successful processing, AE with the processing
   error (the message stays stored, status ``error``, reprocessable); enhanced mode CA
   once stored (the commit ACK), whatever processing then did, which the inbox records.

A message already in the inbox (same MSH-3, MSH-4, MSH-10) is acknowledged again from its
stored outcome and not processed again; one stored but never processed (the listener died
in between) is processed now. ``recover()`` does the same for all such messages at start-up,
so each stored message is processed once, and processing is idempotent on top (mappings
derive resource ids from the message) for the crash window between processing and its
outcome record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from fhir_server.repository.base import StoreError
from fhir_server.repository.inbox import ERROR, PROCESSED, RECEIVED, InboxRecord, Intake, Outcome
from hl7_listener import ack
from hl7_listener.ack import ErrorDetail, Header
from hl7_listener.batching import GroupCommit
from hl7_listener.metrics import Metrics
from mappings.errors import Hl7Error, ParseError
from mappings.message import Message, parse

log = logging.getLogger(__name__)

PROCESSING_IDS = ("P", "T", "D")
FINISHED_MEMORY = 100_000


@dataclass(frozen=True)
class ProcessResult:
    """What processing produced: references of the resources written (``Patient/123``)."""

    resources: Sequence[str] = ()


Process = Callable[[Message, InboxRecord], ProcessResult]


def no_processing(message: Message, record: InboxRecord) -> ProcessResult:
    """The default until the mappings are wired in: store, mark processed, produce nothing."""
    return ProcessResult()


class Inbox(Protocol):
    """What the handler needs of the inbox (``fhir_server.repository.inbox.MongoInbox``)."""

    def receive_many(self, intakes: Sequence[Intake]) -> list[tuple[InboxRecord, bool]]: ...

    def record_outcomes(self, outcomes: Sequence[Outcome]) -> list[bool]: ...

    def unprocessed(self, since: datetime | None = None) -> list[InboxRecord]: ...

    def get(self, id: str) -> InboxRecord | None: ...


@dataclass(frozen=True)
class Reply:
    """What the server should do: send ``ack`` (unless None), then close if ``close``."""

    ack: bytes | None
    code: str
    close: bool = False


@dataclass
class _Result:
    outcome: ack.Outcome
    errors: list[ErrorDetail] = field(default_factory=list)
    recorded: bool = True  # False: no outcome stored (a store failure); recovery retries it


class Handler:
    """Shared by every connection of a listener; safe to call concurrently."""

    def __init__(
        self,
        inbox: Inbox,
        process: Process = no_processing,
        *,
        executor: Executor | None = None,
        close_on_store_error: bool = False,
        metrics: Metrics | None = None,
    ) -> None:
        self._inbox = inbox
        self._process = process
        self._executor = executor
        self._close_on_store_error = close_on_store_error
        self.metrics = metrics or Metrics()
        self._intake: GroupCommit[Intake, tuple[InboxRecord, bool]] = GroupCommit(
            inbox.receive_many, executor
        )
        self._outcomes: GroupCommit[Outcome, bool] = GroupCommit(inbox.record_outcomes, executor)
        self._in_flight: dict[str, asyncio.Future[_Result]] = {}
        # Ids this process finished recently: recovery skips them (it read its list earlier).
        self._finished: dict[str, None] = {}
        # Set when a stored message could not be processed for a store failure: the
        # listener's recovery loop then looks for unprocessed messages again.
        self.deferred = asyncio.Event()

    async def handle(self, payload: bytes, remote: str = "") -> Reply:
        """The reply to one complete frame."""
        started = time.perf_counter()
        try:
            reply = await self._handle(payload, remote)
        except Exception:
            # A defect must not cost the connection, nor ever become an AA.
            log.exception("unexpected failure handling a message from %s", remote)
            self.metrics.errors.labels("internal").inc()
            detail = ErrorDetail(ack.APPLICATION_INTERNAL_ERROR, "internal error; resend later")
            reply = _reply(_header_or_minimal(payload), "utf-8", _Result(ack.Outcome.ERROR, [detail]))
        finally:
            self.metrics.ack_latency.observe(time.perf_counter() - started)
        if reply.ack is not None:
            self.metrics.acks.labels(reply.code).inc()
        return reply

    async def _handle(self, payload: bytes, remote: str) -> Reply:
        try:
            message = parse(payload)
        except ParseError as exc:
            self.metrics.errors.labels("parse").inc()
            self.metrics.received.labels("unparseable").inc()
            header = Header.from_fields(exc.header) if exc.header else ack.MINIMAL
            return _reply(header, "utf-8", _Result(ack.Outcome.REJECT, [_detail(exc)]))
        header = Header.from_fields(message.msh_fields)
        self.metrics.received.labels(f"{message.message_type}^{message.trigger_event}").inc()
        rejected = _check_header(message)
        if rejected is not None:
            self.metrics.errors.labels("header").inc()
            return _reply(header, message.codec, _Result(ack.Outcome.REJECT, [rejected]))
        intake = Intake(
            raw=payload,
            sending_application=header.sending_application,
            sending_facility=header.sending_facility,
            control_id=header.control_id,
            message_type=f"{message.message_type}^{message.trigger_event}",
            received=datetime.now(UTC),
            remote=remote,
        )
        try:
            record, duplicate = await self._intake.submit(intake)
        except StoreError as exc:
            self.metrics.errors.labels("store").inc()
            log.warning("inbox unavailable, message %s not accepted: %s", header.control_id, exc)
            if self._close_on_store_error:
                return Reply(None, "", close=True)
            detail = ErrorDetail(
                ack.APPLICATION_INTERNAL_ERROR,
                "message not stored: store unavailable, resend later",
                "MSH",
                1,
                10,
            )
            return _reply(header, message.codec, _Result(ack.Outcome.ERROR, [detail]))
        if duplicate:
            self.metrics.duplicates.inc()
        if duplicate and record.status in (PROCESSED, ERROR):
            result = _stored_result(record)
        else:
            result = await self._process_once(message, record)
        if header.enhanced and result.outcome is not ack.Outcome.REJECT:
            result = _Result(ack.Outcome.ACCEPT)  # commit ACK: the message is durably ours
        return _reply(header, message.codec, result)

    async def _process_once(self, message: Message, record: InboxRecord) -> _Result:
        """Process a stored message unless this process is already doing so (then wait for it)."""
        running = self._in_flight.get(record.id)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[_Result] = asyncio.get_running_loop().create_future()
        self._in_flight[record.id] = future
        try:
            result = await self._run_processing(message, record)
            future.set_result(result)
            if result.recorded:
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

    async def _run_processing(self, message: Message, record: InboxRecord) -> _Result:
        loop = asyncio.get_running_loop()
        try:
            with self.metrics.processing.time():
                produced = await loop.run_in_executor(self._executor, self._process, message, record)
        except StoreError as exc:
            # Stored but not processed: no outcome, so the recovery loop or a resend retries it.
            self.metrics.errors.labels("store").inc()
            self.deferred.set()
            detail = ErrorDetail(ack.APPLICATION_INTERNAL_ERROR, f"stored; processing deferred: {exc}")
            return _Result(ack.Outcome.ERROR, [detail], recorded=False)
        except Hl7Error as exc:
            self.metrics.errors.labels("processing").inc()
            return await self._record(
                record, _Result(ack.Outcome.ERROR, [_detail(exc)]), [], exc.reason, exc.code
            )
        except Exception as exc:
            self.metrics.errors.labels("processing").inc()
            log.exception("processing message %s failed", record.control_id)
            reason = f"{exc.__class__.__name__}: {exc}"
            detail = ErrorDetail(ack.APPLICATION_INTERNAL_ERROR, reason)
            return await self._record(record, _Result(ack.Outcome.ERROR, [detail]), [], reason, detail.code)
        return await self._record(record, _Result(ack.Outcome.ACCEPT), list(produced.resources), None, None)

    async def _record(
        self, record: InboxRecord, result: _Result, resources: list[str], reason: str | None, code: int | None
    ) -> _Result:
        status = PROCESSED if result.outcome is ack.Outcome.ACCEPT else ERROR
        code_sent = "AA" if status == PROCESSED else "AE"
        outcome = Outcome(record.id, record.attempts + 1, status, resources, code_sent, reason, code)
        try:
            await self._outcomes.submit(outcome)
        except StoreError as exc:
            # Processed, but the store went away before the outcome was recorded: say AE so
            # the sender resends; the resend (or the recovery loop) reprocesses idempotently.
            self.metrics.errors.labels("store").inc()
            self.deferred.set()
            detail = ErrorDetail(ack.APPLICATION_INTERNAL_ERROR, f"outcome not stored: {exc}")
            return _Result(ack.Outcome.ERROR, [detail], recorded=False)
        return result

    async def recover(self, since: datetime | None = None, stop: asyncio.Event | None = None) -> int:
        """Process every stored message that has no outcome (after a crash); returns how many.

        Returns early, between two messages, once ``stop`` is set (shutdown)."""
        loop = asyncio.get_running_loop()
        pending = await loop.run_in_executor(self._executor, self._inbox.unprocessed, since)
        done = 0
        for listed in pending:
            if stop is not None and stop.is_set():
                break
            if listed.id in self._finished or listed.id in self._in_flight:
                continue
            record = await loop.run_in_executor(self._executor, self._inbox.get, listed.id)
            if record is None or record.status != RECEIVED or record.id in self._finished:
                continue
            try:
                message = parse(record.raw)
            except ParseError as exc:
                await self._record(
                    record, _Result(ack.Outcome.ERROR, [_detail(exc)]), [], exc.reason, exc.code
                )
                continue
            await self._process_once(message, record)
            done += 1
        if done:
            log.warning("processed %d stored message(s) left unprocessed by an earlier run", done)
        return done

    async def reprocess(self, record: InboxRecord) -> str:
        """Run a stored message through processing again (``interop hl7 replay``); its new status."""
        try:
            message = parse(record.raw)
        except ParseError as exc:
            await self._record(record, _Result(ack.Outcome.ERROR, [_detail(exc)]), [], exc.reason, exc.code)
            return ERROR
        result = await self._process_once(message, record)
        return PROCESSED if result.outcome is ack.Outcome.ACCEPT else ERROR


def _check_header(message: Message) -> ErrorDetail | None:
    """MSH checks that decide whether a message can be taken at all."""
    if not message.control_id:
        return ErrorDetail(101, "MSH-10 message control id is required", "MSH", 1, 10)
    if message.version and not message.version.startswith("2."):
        return ErrorDetail(203, f"unsupported version {message.version!r}", "MSH", 1, 12)
    if message.processing_id and message.processing_id not in PROCESSING_IDS:
        return ErrorDetail(202, f"unsupported processing id {message.processing_id!r}", "MSH", 1, 11)
    return None


def _header_or_minimal(payload: bytes) -> Header:
    try:
        return Header.from_fields(parse(payload).msh_fields)
    except Exception:
        return ack.MINIMAL


def _detail(exc: Hl7Error) -> ErrorDetail:
    segment = exc.segment or ("MSH" if exc.position == 1 else "")
    return ErrorDetail(exc.code, exc.reason, segment, 1 if segment else exc.position, exc.field)


def _stored_result(record: InboxRecord) -> _Result:
    if record.status == PROCESSED:
        return _Result(ack.Outcome.ACCEPT)
    code = record.error_code or ack.APPLICATION_INTERNAL_ERROR
    return _Result(ack.Outcome.ERROR, [ErrorDetail(code, record.error or "processing failed")])


def _reply(header: Header, codec: str, result: _Result) -> Reply:
    code = ack.code_for(header, result.outcome)
    if not ack.should_send(header, code):
        return Reply(None, code)
    text = ack.build(header, code, result.errors)
    return Reply(text.encode(codec or "utf-8", errors="replace"), code)


__all__ = ["Handler", "Inbox", "Process", "ProcessResult", "Reply", "no_processing"]
