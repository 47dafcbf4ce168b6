"""The MLLP listener over real sockets against the real store."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from fhir_server.repository.inbox import ERROR, PROCESSED, InboxRecord, MongoInbox, inbox_id
from fhir_server.settings import Settings
from hl7_listener.client import MllpClient, MllpClosed, ack_code
from hl7_listener.handler import ProcessResult
from hl7_listener.mllp import encode
from mappings.errors import MappingError
from mappings.message import Message
from tests.integration.hl7_helpers import RunningListener, StoreProxy, adt, fields, host_port, send


@pytest.fixture
def listener(settings: Settings, inbox: MongoInbox) -> Iterator[RunningListener]:
    with RunningListener(settings) as running:
        yield running


def stored(inbox: MongoInbox, control_id: str, app: str = "LAB", facility: str = "HOSP") -> InboxRecord:
    record = inbox.get(inbox_id(app, facility, control_id))
    assert record is not None, f"{control_id} not in the inbox"
    return record


def test_aa_fields_and_durable_intake(listener: RunningListener, inbox: MongoInbox) -> None:
    message = adt("C100")
    [reply] = send(listener.address, [message])
    msh, msa = fields(reply, "MSH"), fields(reply, "MSA")
    assert (msh[3], msh[4], msh[5], msh[6]) == ("EHR", "MAIN", "LAB", "HOSP")
    assert msh[9] == "ACK^A01^ACK"
    assert msh[10] and msh[10] != "C100"
    assert (msh[11], msh[12]) == ("P", "2.5.1")
    assert msa[1:3] == ["AA", "C100"]
    listener.drain()
    record = stored(inbox, "C100")
    assert record.raw == message
    assert record.status == PROCESSED
    assert record.ack == "AA"
    assert record.remote.startswith("127.0.0.1:")


def test_several_frames_in_one_write_and_one_frame_in_many(listener: RunningListener) -> None:
    async def go() -> list[bytes]:
        async with MllpClient(*listener.address) as client:
            await client.send_raw(b"".join(encode(adt(f"B{i}")) for i in range(3)))
            replies = [await client.receive() for _ in range(3)]
            data = encode(adt("split"))
            for i in range(0, len(data), 7):
                await client.send_raw(data[i : i + 7])
            replies.append(await client.receive())
            return replies

    replies = asyncio.run(go())
    assert [fields(r, "MSA")[2] for r in replies] == ["B0", "B1", "B2", "split"]
    assert {ack_code(r) for r in replies} == {"AA"}


@pytest.mark.parametrize("separator", [b"\r", b"\n", b"\r\n"])
def test_segment_separators(listener: RunningListener, inbox: MongoInbox, separator: bytes) -> None:
    message = adt(f"SEP{len(separator)}{separator[-1]}").replace(b"\r", separator)
    [reply] = send(listener.address, [message])
    assert ack_code(reply) == "AA"


def test_garbage_before_a_frame_is_skipped(listener: RunningListener) -> None:
    async def go() -> bytes:
        async with MllpClient(*listener.address) as client:
            await client.send_raw(b"\x00\xffnoise\r\n" + encode(adt("G1")))
            return await client.receive()

    assert fields(asyncio.run(go()), "MSA")[1:3] == ["AA", "G1"]


def test_duplicate_is_acked_again_without_processing(settings: Settings, inbox: MongoInbox) -> None:
    runs: list[str] = []

    def process(message: Message, record: InboxRecord) -> ProcessResult:
        runs.append(message.control_id)
        return ProcessResult([f"Patient/{message.control_id}"])

    with RunningListener(settings, process) as listener:
        first, again = send(listener.address, [adt("D1"), adt("D1")])
        [other_sender] = send(listener.address, [adt("D1", facility="OTHER")])
        listener.drain()
    assert fields(first, "MSA")[1:3] == ["AA", "D1"]
    assert fields(again, "MSA")[1:3] == ["AA", "D1"]
    assert fields(again, "MSH")[10] != fields(first, "MSH")[10]
    assert ack_code(other_sender) == "AA"
    assert runs == ["D1", "D1"]  # the second run is the other facility's message
    assert stored(inbox, "D1").resources == ["Patient/D1"]
    assert stored(inbox, "D1").attempts == 1


def test_processing_error_is_ae_with_err_and_stays_reprocessable(
    settings: Settings, inbox: MongoInbox
) -> None:
    def process(message: Message, record: InboxRecord) -> ProcessResult:
        raise MappingError(101, "PID-3 patient identifier is required", "PID", 3)

    with RunningListener(settings.with_overrides(mllp_ack_after="processed"), process) as listener:
        [reply] = send(listener.address, [adt("E1")])
    assert fields(reply, "MSA")[1:3] == ["AE", "E1"]
    err = fields(reply, "ERR")
    assert err[2] == "PID^1^3"
    assert err[3] == "101^Required field missing^HL70357"
    assert err[4] == "E"
    assert "PID-3" in err[8]
    record = stored(inbox, "E1")
    assert (record.status, record.error_code) == (ERROR, 101)
    assert record.raw == adt("E1")


def test_unexpected_processing_failure_is_ae_207(settings: Settings, inbox: MongoInbox) -> None:
    def process(message: Message, record: InboxRecord) -> ProcessResult:
        raise RuntimeError("mapping exploded")

    with RunningListener(settings.with_overrides(mllp_ack_after="processed"), process) as listener:
        [reply] = send(listener.address, [adt("E2")])
    assert ack_code(reply) == "AE"
    assert fields(reply, "ERR")[3].startswith("207^")
    assert stored(inbox, "E2").status == ERROR


def test_enhanced_mode_commit_ack(listener: RunningListener) -> None:
    [always] = send(listener.address, [adt("EN1", extra="|||AL|NE")])
    assert fields(always, "MSA")[1:3] == ["CA", "EN1"]
    assert fields(always, "MSH")[9] == "ACK^A01^ACK"

    async def never_answered() -> bytes:
        async with MllpClient(*listener.address, timeout=5) as client:
            await client.send_raw(encode(adt("EN2", extra="|||ER|AL")))  # ER: no ACK for success
            return await client.send(adt("EN3"))  # the next answer is the next message's

    assert fields(asyncio.run(never_answered()), "MSA")[1:3] == ["AA", "EN3"]


def test_unparseable_message_gets_minimal_nak(listener: RunningListener, inbox: MongoInbox) -> None:
    [reply] = send(listener.address, [b"this is not HL7\r"])
    msh, msa, err = fields(reply, "MSH"), fields(reply, "MSA"), fields(reply, "ERR")
    assert msh[9] == "ACK"
    assert msa[1:3] == ["AR", ""]
    assert err[3].startswith("100^Segment sequence error")
    assert err[2].startswith("MSH")
    assert inbox.list_recent() == []


def test_bad_segment_nak_is_addressed_from_the_header(listener: RunningListener) -> None:
    [reply] = send(listener.address, [adt("P1") + b"bad segment\r"])
    assert fields(reply, "MSH")[5:7] == ["LAB", "HOSP"]
    assert fields(reply, "MSA")[1:3] == ["AR", "P1"]
    assert fields(reply, "ERR")[3].startswith("100^")


def test_missing_control_id_is_rejected(listener: RunningListener, inbox: MongoInbox) -> None:
    [reply] = send(listener.address, [adt("")])
    assert ack_code(reply) == "AR"
    assert fields(reply, "ERR")[2] == "MSH^1^10"
    assert fields(reply, "ERR")[3].startswith("101^")
    assert inbox.list_recent() == []


def test_missing_version_is_accepted_and_echoed_empty(listener: RunningListener) -> None:
    message = adt("V0").replace(b"|P|2.5.1\r", b"|P\r")
    [reply] = send(listener.address, [message])
    assert ack_code(reply) == "AA"
    assert fields(reply, "MSH")[12:13] in ([], [""])


def test_unsupported_version_is_rejected(listener: RunningListener) -> None:
    [reply] = send(listener.address, [adt("V3", version="3.0")])
    assert ack_code(reply) == "AR"
    assert fields(reply, "ERR")[3].startswith("203^")


def test_oversized_message_is_nakked_and_the_connection_closed(settings: Settings, inbox: MongoInbox) -> None:
    with RunningListener(settings.with_overrides(mllp_max_message_bytes=2048)) as listener:

        async def go() -> tuple[bytes, bool]:
            async with MllpClient(*listener.address) as client:
                nak = await client.send(adt("BIG") + b"NTE|1||" + b"x" * 4000 + b"\r")
                try:
                    await client.receive()
                except MllpClosed:
                    return nak, True
                return nak, False

        nak, closed = asyncio.run(go())
        assert closed
        assert ack_code(nak) == "AR"
        assert "2048" in fields(nak, "ERR")[8]
        assert ack_code(send(listener.address, [adt("SMALL")])[0]) == "AA"
    assert inbox.list_recent() == [stored(inbox, "SMALL")]


def test_messages_on_one_connection_are_answered_in_order(listener: RunningListener) -> None:
    async def go() -> list[str]:
        async with MllpClient(*listener.address) as client:
            await client.send_raw(b"".join(encode(adt(f"O{i}")) for i in range(50)))
            return [fields(await client.receive(), "MSA")[2] for _ in range(50)]

    assert asyncio.run(go()) == [f"O{i}" for i in range(50)]


def test_many_concurrent_connections(listener: RunningListener, inbox: MongoInbox) -> None:
    async def sender(n: int) -> list[str]:
        async with MllpClient(*listener.address) as client:
            return [ack_code(await client.send(adt(f"M{n}-{i}"))) for i in range(20)]

    async def go() -> list[list[str]]:
        return await asyncio.gather(*(sender(n) for n in range(20)))

    codes = asyncio.run(go())
    assert {c for per in codes for c in per} == {"AA"}
    assert len(inbox.list_recent(limit=1000)) == 400


def test_idle_connections_are_closed(settings: Settings, inbox: MongoInbox) -> None:
    with (
        RunningListener(settings.with_overrides(mllp_idle_timeout=1)) as listener,
        socket.create_connection(listener.address, timeout=10) as sock,
    ):
        assert sock.recv(10) == b""  # closed by the server, not by our timeout


def test_connections_over_the_limit_are_refused(settings: Settings, inbox: MongoInbox) -> None:
    with RunningListener(settings.with_overrides(mllp_max_connections=2)) as listener:

        async def go() -> None:
            async with MllpClient(*listener.address) as a, MllpClient(*listener.address) as b:
                assert ack_code(await a.send(adt("L1"))) == "AA"
                assert ack_code(await b.send(adt("L2"))) == "AA"
                async with MllpClient(*listener.address) as third:
                    with pytest.raises((MllpClosed, ConnectionError)):
                        await third.send(adt("L3"))
            # The server frees a slot once it has seen the close.
            await asyncio.get_running_loop().run_in_executor(None, listener.wait_for_connections, 0)
            async with MllpClient(*listener.address) as later:
                assert ack_code(await later.send(adt("L4"))) == "AA"

        asyncio.run(go())


@pytest.mark.parametrize("ack_after", ["stored", "processed"])
def test_shutdown_finishes_in_flight_messages(settings: Settings, inbox: MongoInbox, ack_after: str) -> None:
    import threading

    entered, release = threading.Event(), threading.Event()

    def process(message: Message, record: InboxRecord) -> ProcessResult:
        entered.set()
        release.wait(10)
        return ProcessResult()

    listener = RunningListener(settings.with_overrides(mllp_ack_after=ack_after), process).__enter__()
    try:

        async def go() -> bytes:
            async with MllpClient(*listener.address) as client:
                await client.send_raw(encode(adt("S1")))
                await asyncio.get_running_loop().run_in_executor(None, entered.wait, 10)
                stopper = threading.Thread(target=listener.stop)
                stopper.start()
                release.set()
                reply = await client.receive()
                await asyncio.get_running_loop().run_in_executor(None, stopper.join, 30)
                return reply

        assert fields(asyncio.run(go()), "MSA")[1:3] == ["AA", "S1"]
    finally:
        release.set()
        listener.stop()
    assert stored(inbox, "S1").status == PROCESSED


def test_store_outage_never_aa_and_recovers(settings: Settings, inbox: MongoInbox) -> None:
    assert settings.mongodb_uri
    proxy = StoreProxy(host_port(settings.mongodb_uri))
    try:
        outage = settings.with_overrides(mongodb_uri=proxy.uri(), mllp_store_timeout_ms=300)
        with RunningListener(outage) as listener:
            assert ack_code(send(listener.address, [adt("U1")])[0]) == "AA"
            proxy.cut()
            replies = send(listener.address, [adt("U2"), adt("U3")])
            for reply in replies:
                assert ack_code(reply) == "AE"
                assert fields(reply, "ERR")[3].startswith("207^")
            proxy.restore()
            codes = []
            for _ in range(100):  # the driver reconnects on its own; a resend gets in
                codes.append(ack_code(send(listener.address, [adt("U2")])[0]))
                if codes[-1] == "AA":
                    break
            assert codes[-1] == "AA"
            assert "AA" not in codes[:-1]
            listener.drain()
        assert stored(inbox, "U2").status == PROCESSED
        assert inbox.get(inbox_id("LAB", "HOSP", "U3")) is None
    finally:
        proxy.close()


def test_store_outage_close_mode_sends_nothing(settings: Settings, inbox: MongoInbox) -> None:
    assert settings.mongodb_uri
    proxy = StoreProxy(host_port(settings.mongodb_uri))
    try:
        configured = settings.with_overrides(
            mongodb_uri=proxy.uri(), mllp_store_timeout_ms=300, mllp_on_store_error="close"
        )
        with RunningListener(configured) as listener:
            proxy.cut()
            with pytest.raises(MllpClosed):
                send(listener.address, [adt("X1")])
    finally:
        proxy.close()


def test_start_up_processes_messages_stored_but_never_processed(
    settings: Settings, inbox: MongoInbox
) -> None:
    from datetime import UTC, datetime

    from fhir_server.repository.inbox import Intake

    inbox.receive(Intake(adt("R1"), "LAB", "HOSP", "R1", "ADT^A01", datetime.now(UTC)))

    def process(message: Message, record: InboxRecord) -> ProcessResult:
        return ProcessResult([f"Patient/{message.control_id}"])

    with RunningListener(settings, process) as listener:
        # Whether start-up recovery or the resend gets there first, it is processed once.
        assert ack_code(send(listener.address, [adt("R1")])[0]) == "AA"
        listener.drain()
    record = stored(inbox, "R1")
    assert (record.status, record.attempts, record.resources) == (PROCESSED, 1, ["Patient/R1"])


def test_metrics_count_received_and_acks(listener: RunningListener) -> None:
    send(listener.address, [adt("MET1"), b"garbage\r"])
    listener.drain()
    assert listener.server is not None
    from prometheus_client import generate_latest

    text = generate_latest(listener.server.handler.metrics.registry).decode()
    assert 'hl7_acks_sent_total{code="AA"} 1.0' in text
    assert 'hl7_acks_sent_total{code="AR"} 1.0' in text
    assert 'hl7_messages_received_total{type="ADT^A01"} 1.0' in text
    assert "hl7_ack_latency_seconds_count 2.0" in text
    assert "hl7_processing_seconds_count 1.0" in text  # the garbage was never processed
    assert "hl7_open_connections" in text


def test_metrics_are_served_over_http(settings: Settings, inbox: MongoInbox) -> None:
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    listener = RunningListener(settings)
    listener.settings = listener.settings.with_overrides(mllp_metrics_port=port)
    with listener:
        send(listener.address, [adt("HTTPM")])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    assert 'hl7_acks_sent_total{code="AA"} 1.0' in text
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # stopped with the listener


def test_processing_deferred_by_a_store_failure_is_retried(settings: Settings, inbox: MongoInbox) -> None:
    import threading

    from fhir_server.repository.base import StoreError

    calls: list[str] = []
    retried = threading.Event()

    def process(message: Message, record: InboxRecord) -> ProcessResult:
        calls.append(message.control_id)
        if len(calls) == 1:
            raise StoreError("store went away after the intake")
        retried.set()
        return ProcessResult(["Patient/DEF"])

    with RunningListener(settings, process, retry_pause=0.05) as listener:
        [reply] = send(listener.address, [adt("DEF", extra="|||AL|AL")])
        assert fields(reply, "MSA")[1:3] == ["CA", "DEF"]  # committed: the sender will not resend
        assert retried.wait(30)
    record = stored(inbox, "DEF")
    assert (record.status, record.attempts, record.resources) == (PROCESSED, 1, ["Patient/DEF"])
    assert calls == ["DEF", "DEF"]
