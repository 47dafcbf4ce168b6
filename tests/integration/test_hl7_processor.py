"""ACK after durable intake (INTEROP_MLLP_ACK_AFTER=stored, the default), processing behind
it: real sockets, the real store, the real listener."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from fhir_server.repository.inbox import ERROR, PROCESSED, RECEIVED, InboxRecord, MongoInbox, inbox_id
from fhir_server.repository.mongo import MongoRepository
from fhir_server.settings import Settings
from hl7_listener.client import MllpClient, ack_code
from hl7_listener.handler import Handler, ProcessResult
from hl7_listener.processing import FhirProcessing
from mappings.errors import MappingError
from mappings.message import Message
from tests.integration.helpers import headers
from tests.integration.hl7_helpers import RunningListener, StoreProxy, adt, fields, host_port, send

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "hl7"


def record(inbox: MongoInbox, control_id: str, app: str = "LAB") -> InboxRecord:
    found = inbox.get(inbox_id(app, "HOSP", control_id))
    assert found is not None, control_id
    return found


class Blocking:
    """Processing that waits for ``release`` (so the test sees what happens before it ends)."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.calls: list[str] = []

    def __call__(self, message: Message, record: InboxRecord) -> ProcessResult:
        self.calls.append(message.control_id)
        self.entered.set()
        assert self.release.wait(30)
        return ProcessResult([f"Patient/{message.control_id}"])


@pytest.fixture
def blocking() -> Iterator[Blocking]:
    processing = Blocking()
    yield processing
    processing.release.set()


def test_aa_arrives_before_processing_completes(
    settings: Settings, inbox: MongoInbox, blocking: Blocking
) -> None:
    assert settings.mllp_ack_after == "stored"  # the default
    with RunningListener(settings, blocking) as listener:
        [reply] = send(listener.address, [adt("EARLY")])
        assert fields(reply, "MSA")[1:3] == ["AA", "EARLY"]
        assert blocking.entered.wait(30)  # processing started and is still held ...
        assert record(inbox, "EARLY").status == RECEIVED  # ... and has not finished
        metrics = listener.server.handler.metrics if listener.server else None
        assert metrics is not None and metrics.backlog._value.get() == 1
        blocking.release.set()
        listener.drain()
        assert metrics.backlog._value.get() == 0
    stored = record(inbox, "EARLY")
    assert (stored.status, stored.attempts, stored.resources, stored.ack) == (
        PROCESSED,
        1,
        ["Patient/EARLY"],
        "AA",
    )
    assert blocking.calls == ["EARLY"]


def test_processed_mode_answers_only_after_processing(
    settings: Settings, inbox: MongoInbox, blocking: Blocking
) -> None:
    with RunningListener(settings.with_overrides(mllp_ack_after="processed"), blocking) as listener:

        async def go() -> bytes:
            async with MllpClient(*listener.address, timeout=30) as client:
                reply = asyncio.ensure_future(client.send(adt("LATE")))
                await asyncio.get_running_loop().run_in_executor(None, blocking.entered.wait, 30)
                done, _ = await asyncio.wait({reply}, timeout=0.2)
                assert not done  # no ACK while processing is held
                blocking.release.set()
                return await reply

        assert fields(asyncio.run(go()), "MSA")[1:3] == ["AA", "LATE"]
    assert record(inbox, "LATE").status == PROCESSED


def test_a08_never_overtakes_its_a01_with_other_senders_interleaved(
    settings: Settings, repository: MongoRepository, inbox: MongoInbox, client: FlaskClient
) -> None:
    admit = (SAMPLES / "adt_a01_admit_v251.hl7").read_bytes()
    update = (SAMPLES / "adt_a08_update_v251.hl7").read_bytes()
    others = [adt(f"OTHER{n}", app=f"APP{n % 3}") for n in range(9)]
    with RunningListener(settings, FhirProcessing(settings, repository)) as listener:

        async def sender(messages: list[bytes]) -> list[str]:
            async with MllpClient(*listener.address, timeout=30) as c:
                return [ack_code(await c.send(m)) for m in messages]

        async def go() -> list[list[str]]:
            return await asyncio.gather(sender([admit, update]), sender(others[:5]), sender(others[5:]))

        codes = asyncio.run(go())
        assert codes[0] == ["CA", "CA"]  # the samples ask for enhanced-mode commit ACKs
        assert set(codes[1] + codes[2]) == {"AA"}
        listener.drain()
    patients = client.get(
        "/fhir/Patient?identifier=urn:oid:1.2.840.114350.1.13.99.2|PATID1234", headers=headers()
    ).json
    assert patients["total"] == 1
    patient = patients["entry"][0]["resource"]
    assert patient["meta"]["versionId"] == "2"
    assert patient["address"][0]["line"] == ["3333 New Street"]  # the A08's state, applied last
    statuses = {r.control_id: r.status for r in inbox.list_recent(limit=100)}
    assert set(statuses.values()) == {PROCESSED}
    assert len(statuses) == 11


def test_a_processing_error_is_recorded_and_replayable(settings: Settings, inbox: MongoInbox) -> None:
    def process(message: Message, record: InboxRecord) -> ProcessResult:
        raise MappingError(101, "PID-3 patient identifier is required", "PID", 3)

    with RunningListener(settings, process) as listener:
        [reply] = send(listener.address, [adt("ERR1")])
        assert ack_code(reply) == "AA"  # stored: the error is the inbox's to report
        listener.drain()
        assert listener.server is not None
        metrics = listener.server.handler.metrics
        assert metrics.processed.labels("error")._value.get() == 1
    failed = record(inbox, "ERR1")
    assert (failed.status, failed.error_code, failed.ack) == (ERROR, 101, "AE")
    assert "PID-3" in (failed.error or "")

    def fixed(message: Message, record: InboxRecord) -> ProcessResult:
        return ProcessResult([f"Patient/{message.control_id}"])

    async def replay() -> str:
        return await Handler(inbox, fixed).reprocess(failed)

    assert asyncio.run(replay()) == PROCESSED
    again = record(inbox, "ERR1")
    assert (again.status, again.attempts, again.resources) == (PROCESSED, 2, ["Patient/ERR1"])


def test_a_store_failure_during_processing_is_retried_once_the_store_is_back(
    settings: Settings, inbox: MongoInbox, blocking: Blocking
) -> None:
    assert settings.mongodb_uri
    proxy = StoreProxy(host_port(settings.mongodb_uri))
    try:
        outage = settings.with_overrides(mongodb_uri=proxy.uri(), mllp_store_timeout_ms=300)
        with RunningListener(outage, blocking, retry_pause=0.05) as listener:
            assert ack_code(send(listener.address, [adt("OUT1")])[0]) == "AA"
            assert blocking.entered.wait(30)
            proxy.cut()  # processing is under way; its outcome cannot be recorded now
            blocking.release.set()
            assert listener.server is not None
            metrics = listener.server.handler.metrics
            deferred = metrics.processed.labels("deferred")
            deadline = asyncio.run(_poll(lambda: deferred._value.get() >= 1))
            assert deadline, "the outcome insert did not fail during the outage"
            assert inbox.get(inbox_id("LAB", "HOSP", "OUT1")).status == RECEIVED  # type: ignore[union-attr]
            proxy.restore()
            listener.drain()
        done = record(inbox, "OUT1")
        assert (done.status, done.attempts, done.resources) == (PROCESSED, 1, ["Patient/OUT1"])
        assert blocking.calls == ["OUT1", "OUT1"]  # processed again (idempotently) after the outage
    finally:
        proxy.close()


async def _poll(condition: object, timeout: float = 30.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True
