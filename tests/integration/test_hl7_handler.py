"""The handler without sockets, against the real inbox: ACK rules, processing once, recovery."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import hypothesis
import hypothesis.strategies as st

from fhir_server.repository.inbox import ERROR, PROCESSED, InboxRecord, Intake, MongoInbox, inbox_id
from hl7_listener.handler import Handler, Process, ProcessResult, Reply
from mappings.errors import MappingError
from mappings.message import Message, parse
from tests.integration.hl7_helpers import adt, fields


def handle_all(
    inbox: MongoInbox,
    process: Process,
    payloads: list[bytes],
    concurrent: bool = False,
    ack_after: str = "processed",
) -> list[Reply]:
    """Each reply; with ``ack_after="stored"`` also waits for the background processing."""

    async def go() -> list[Reply]:
        with ThreadPoolExecutor(4) as executor:
            handler = Handler(inbox, process, executor=executor, ack_after=ack_after)
            if ack_after == "stored":
                replies = [await handler.handle(p, "test") for p in payloads]
                assert await handler.processor.wait_idle(30)
                return replies
            if concurrent:
                return list(await asyncio.gather(*(handler.handle(p, "test") for p in payloads)))
            return [await handler.handle(p, "test") for p in payloads]

    return asyncio.run(go())


def ok(message: Message, record: InboxRecord) -> ProcessResult:
    return ProcessResult([f"Patient/{message.control_id}"])


def record_of(inbox: MongoInbox, control_id: str) -> InboxRecord:
    record = inbox.get(inbox_id("LAB", "HOSP", control_id))
    assert record is not None
    return record


def test_duplicates_arriving_together_are_processed_once(inbox: MongoInbox) -> None:
    runs: list[str] = []
    lock = threading.Lock()

    def process(message: Message, record: InboxRecord) -> ProcessResult:
        with lock:
            runs.append(message.control_id)
        return ProcessResult()

    replies = handle_all(inbox, process, [adt("SAME")] * 8, concurrent=True)
    assert {r.code for r in replies} == {"AA"}
    assert runs == ["SAME"]
    assert record_of(inbox, "SAME").attempts == 1


def test_duplicate_of_a_failed_message_repeats_the_error_without_reprocessing(inbox: MongoInbox) -> None:
    runs = 0

    def process(message: Message, record: InboxRecord) -> ProcessResult:
        nonlocal runs
        runs += 1
        raise MappingError(103, "unknown PV1-2 patient class 'Z'", "PV1", 2)

    first, again = handle_all(inbox, process, [adt("F1"), adt("F1")])
    assert runs == 1
    assert first.code == again.code == "AE"
    assert first.ack is not None and again.ack is not None
    assert fields(again.ack, "ERR")[3].startswith("103^")
    assert "patient class" in fields(again.ack, "ERR")[8]
    record = record_of(inbox, "F1")
    assert (record.status, record.attempts, record.error_code) == (ERROR, 1, 103)


def test_enhanced_mode_commits_even_when_processing_fails(inbox: MongoInbox) -> None:
    def process(message: Message, record: InboxRecord) -> ProcessResult:
        raise MappingError(101, "PID-3 missing", "PID", 3)

    [reply] = handle_all(inbox, process, [adt("EF1", extra="|||AL|AL")])
    assert reply.code == "CA"
    assert reply.ack is not None
    assert "ERR" not in reply.ack.decode()
    assert record_of(inbox, "EF1").status == ERROR  # the application outcome is recorded


def test_enhanced_mode_reject_is_cr(inbox: MongoInbox) -> None:
    [reply] = handle_all(inbox, ok, [adt("EV", extra="|||AL|NE", version="9.9")])
    assert reply.code == "CR"


def test_processing_result_links_resources(inbox: MongoInbox) -> None:
    handle_all(inbox, ok, [adt("L1")])
    record = record_of(inbox, "L1")
    assert (record.status, record.resources, record.ack) == (PROCESSED, ["Patient/L1"], "AA")


def test_recover_processes_only_messages_without_outcome(inbox: MongoInbox) -> None:
    now = datetime.now(UTC)
    for control_id in ("A", "B"):
        inbox.receive(Intake(adt(control_id), "LAB", "HOSP", control_id, "ADT^A01", now))
    done, _ = inbox.receive(Intake(adt("C"), "LAB", "HOSP", "C", "ADT^A01", now))
    inbox.mark_processed(done, [])
    runs: list[str] = []

    def process(message: Message, record: InboxRecord) -> ProcessResult:
        runs.append(message.control_id)
        return ProcessResult()

    async def go() -> int:
        return await Handler(inbox, process).recover()

    assert asyncio.run(go()) == 2
    assert sorted(runs) == ["A", "B"]
    assert asyncio.run(go()) == 0
    assert {record_of(inbox, c).status for c in "ABC"} == {PROCESSED}


def test_reprocess_turns_an_error_into_processed(inbox: MongoInbox) -> None:
    failing = True

    def process(message: Message, record: InboxRecord) -> ProcessResult:
        if failing:
            raise RuntimeError("mapping not ready")
        return ProcessResult(["Patient/x"])

    handle_all(inbox, process, [adt("RP")])
    assert record_of(inbox, "RP").status == ERROR
    failing = False

    async def go() -> str:
        return await Handler(inbox, process).reprocess(record_of(inbox, "RP"))

    assert asyncio.run(go()) == PROCESSED
    record = record_of(inbox, "RP")
    assert (record.status, record.attempts, record.resources) == (PROCESSED, 2, ["Patient/x"])


def test_a_defect_in_the_handler_is_ae_never_aa(inbox: MongoInbox) -> None:
    class Broken(MongoInbox):
        def receive_many(self, intakes):  # type: ignore[no-untyped-def]
            raise KeyError("bug")

    broken = Broken.__new__(Broken)
    broken.__dict__.update(inbox.__dict__)
    [reply] = handle_all(broken, ok, [adt("BUG")])
    assert reply.code == "AE"
    assert reply.ack is not None
    assert fields(reply.ack, "MSA")[2] == "BUG"


HL7ISH = st.lists(
    st.one_of(
        st.sampled_from(
            ["MSH|^~\\&|LAB|HOSP|||", "|", "^", "~", "\\", "&", "\r", "\n", "PID|", "ADT^A01", "|2.5"]
        ),
        st.text(max_size=8),
    ),
    max_size=30,
).map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass"))


# The inbox is shared by the examples on purpose: a repeated payload must be answered as a duplicate.
@hypothesis.settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(payload=st.one_of(HL7ISH, st.binary(max_size=200)))
def test_fuzz_any_payload_gets_a_well_formed_answer(inbox: MongoInbox, payload: bytes) -> None:
    [reply] = handle_all(inbox, ok, [payload])
    assert reply.code in {"AA", "AE", "AR", "CA", "CE", "CR"}  # C*: MSH-15/16 valued (enhanced mode)
    assert reply.ack is not None
    text = reply.ack.decode("utf-8", "replace")
    assert text.startswith("MSH")
    assert "\rMSA" in text
    if reply.code not in ("AA", "CA"):
        assert "\rERR" in text
    else:
        header = parse(payload)
        stored = inbox.get(
            inbox_id(header.sending_application, header.sending_facility, fields(reply.ack, "MSA")[2])
        )
        assert stored is not None
        assert stored.status == PROCESSED
