"""One frame in, one reply out: parse, store durably, acknowledge; processing behind it. No sockets.

The order is the listener's promise to senders:

1. **Parse** the header (lean tokenizer). A message that cannot be read, or lacks the
   MSH-10 its identity rests on, is rejected (AR/CR with an ERR) and not stored.
2. **Durable intake**: the raw bytes go into the inbox (group-committed, journaled). Until
   that returns nothing positive is said; if the store is down the sender gets AE/CE with
   ERR 207 (or, configured, the connection is closed without an answer) and resends later.
3. **Acknowledge**, depending on ``ack_after`` (``INTEROP_MLLP_ACK_AFTER``):
   * ``stored`` (default): AA (CA in enhanced mode) now; the message is handed to the
     :class:`~hl7_listener.processor.Processor`, which processes it in the background (in
     order per sender) and records the outcome in the inbox.
   * ``processed``: process now and record the outcome; original mode AA after successful
     processing, AE with the processing error (the message stays stored, status ``error``,
     reprocessable); enhanced mode CA whatever processing then did.

A message already in the inbox (same MSH-3, MSH-4, MSH-10) is acknowledged again from its
stored outcome and not processed again; one stored but not yet processed is acknowledged
(``stored``) or processed now (``processed``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from fhir_server.repository.base import StoreError
from fhir_server.repository.inbox import ERROR, PROCESSED, RECEIVED, InboxRecord, Intake
from hl7_listener import ack
from hl7_listener.ack import ErrorDetail, Header
from hl7_listener.batching import GroupCommit
from hl7_listener.metrics import Metrics
from hl7_listener.processor import (
    Process,
    Processor,
    ProcessResult,
    Result,
    Store,
    error_detail,
    no_processing,
)
from mappings.errors import ParseError
from mappings.message import Message, parse

log = logging.getLogger(__name__)

PROCESSING_IDS = ("P", "T", "D")
ACK_AFTER = ("stored", "processed")


class Inbox(Store, Protocol):
    """What the handler needs of the inbox (``fhir_server.repository.inbox.MongoInbox``)."""

    def receive_many(self, intakes: Sequence[Intake]) -> list[tuple[InboxRecord, bool]]: ...


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
        ack_after: str = "stored",
        processor: Processor | None = None,
    ) -> None:
        if ack_after not in ACK_AFTER:
            raise ValueError(f"ack_after must be one of {ACK_AFTER}, got {ack_after!r}")
        self._inbox = inbox
        self._close_on_store_error = close_on_store_error
        self._ack_after = ack_after
        self.metrics = metrics or (processor.metrics if processor is not None else Metrics())
        self.processor = processor or Processor(inbox, process, executor=executor, metrics=self.metrics)
        self._intake: GroupCommit[Intake, tuple[InboxRecord, bool]] = GroupCommit(
            inbox.receive_many, executor
        )

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
            return _reply(header, "utf-8", _Result(ack.Outcome.REJECT, [error_detail(exc)]))
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
        elif self._ack_after == "stored":
            self.processor.submit(record)  # durably ours: processing follows
            result = _Result(ack.Outcome.ACCEPT)
        else:
            processed = await self.processor.run_one(message, record)
            if processed.status == RECEIVED:
                self.processor.submit(record)  # a store failure: retried in the background
            result = _as_result(processed)
        if header.enhanced and result.outcome is not ack.Outcome.REJECT:
            result = _Result(ack.Outcome.ACCEPT)  # commit ACK: the message is durably ours
        return _reply(header, message.codec, result)

    async def recover(self, since: datetime | None = None, stop: asyncio.Event | None = None) -> int:
        """Process every stored message that has no outcome (after a crash); returns how many."""
        return await self.processor.recover(since, stop)

    async def reprocess(self, record: InboxRecord) -> str:
        """Run a stored message through processing again (``interop hl7 replay``); its new status."""
        return await self.processor.reprocess(record)


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


def _as_result(result: Result) -> _Result:
    if result.status == PROCESSED:
        return _Result(ack.Outcome.ACCEPT)
    detail = result.error or ErrorDetail(ack.APPLICATION_INTERNAL_ERROR, "processing failed")
    return _Result(ack.Outcome.ERROR, [detail])


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


__all__ = ["ACK_AFTER", "Handler", "Inbox", "Process", "ProcessResult", "Reply", "no_processing"]
