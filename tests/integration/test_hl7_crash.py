"""The crash test: no acknowledged message is ever lost, and each is processed once.

Senders stream 10,000 messages with unique control ids over several connections to the
real listener process (``interop hl7 listen``, default ``INTEROP_MLLP_ACK_AFTER=stored``: AA
once the message is durably in the inbox, processing behind it) while the test SIGKILLs it
several times and starts it again. Senders behave like real ones: a message without an ACK
(connection dropped) is sent again to the new process. Once every AA is in, the test waits
(a deadline poll) until the last listener has worked off its backlog: every message that
got AA is then in the inbox, processed, with exactly one resource, first processed in the
order its connection sent it (4 senders, two connections each); processing ran more than
once only for messages caught in the window between processing and its outcome record.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from pymongo import MongoClient

from fhir_server.repository.inbox import OUTCOMES, PROCESSED, MongoInbox, inbox_id
from fhir_server.settings import Settings
from hl7_listener.client import MllpClient, ack_code
from tests.integration.hl7_crash_processing import RERUNS, RESOURCES
from tests.integration.hl7_helpers import adt, fields

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 10_000
CONNECTIONS = 8
KILLS = 3
SENDERS = 4  # sending applications (MSH-3): the processor works on their lanes in parallel
DRAIN_DEADLINE = 600.0  # seconds for the processing backlog to drain after the last AA


class ListenerProcess:
    def __init__(self, settings: Settings) -> None:
        assert settings.mongodb_uri
        self.env = {
            **os.environ,
            "INTEROP_MONGODB_URI": settings.mongodb_uri,
            "INTEROP_MONGODB_DATABASE": settings.database,
            "INTEROP_MLLP_PORT": "0",
            "INTEROP_MLLP_METRICS_PORT": "0",
            "INTEROP_LOG_LEVEL": "ERROR",
            "PYTHONPATH": str(ROOT),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.address: tuple[str, int] | None = None
        self.generation = 0

    def start(self) -> None:
        argv = [sys.executable, "-m", "interop.cli", "hl7", "listen"]
        argv += ["--process", "tests.integration.hl7_crash_processing:process"]
        self.process = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        assert line.startswith("MLLP listening on "), line
        host, port = line.split()[-1].rsplit(":", 1)
        self.address = (host, int(port))
        self.generation += 1

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)
        self._close_pipe()


def sender_of(control_id: str) -> str:
    """Connection n sends as LAB{n % SENDERS}: each sender's messages come over two connections."""
    return f"LAB{int(control_id[1:].split('-')[0]) % SENDERS}"


def stored_id(control_id: str) -> str:
    return inbox_id(sender_of(control_id), "HOSP", control_id)


async def sender(n: int, listener: ListenerProcess, acked: set[str], mismatched: list[str]) -> None:
    ids = [f"K{n}-{i}" for i in range(n, MESSAGES, CONNECTIONS)]
    client: MllpClient | None = None
    generation = 0
    position = 0
    while position < len(ids):
        control_id = ids[position]
        try:
            if client is None or generation != listener.generation:
                if client is not None:
                    await client.close()
                generation = listener.generation
                assert listener.address is not None
                client = MllpClient(*listener.address, timeout=30)
                await client.connect()
            reply = await client.send(adt(control_id, app=sender_of(control_id)))
        except (OSError, EOFError, asyncio.IncompleteReadError):
            if client is not None:
                await client.close()
            client = None
            await asyncio.sleep(0.01)  # the listener is being restarted; wait for the new one
            continue
        if fields(reply, "MSA")[2] != control_id:
            mismatched.append(control_id)
        if ack_code(reply) == "AA":
            acked.add(control_id)
            position += 1
    if client is not None:
        await client.close()


def wait_until_processed(settings: Settings, ids: set[str]) -> tuple[set[str], float]:
    """Poll the outcomes (with a deadline) until every id has a ``processed`` one."""
    assert settings.mongodb_uri
    client: MongoClient[dict[str, object]] = MongoClient(settings.mongodb_uri)
    started = time.monotonic()
    try:
        outcomes = client[settings.database][OUTCOMES]
        while True:
            done = {str(d["id"]) for d in outcomes.find({"st": PROCESSED}, {"id": 1})}
            if ids <= done:
                return done, time.monotonic() - started
            if time.monotonic() - started > DRAIN_DEADLINE:
                raise AssertionError(f"{len(ids - done)} acknowledged message(s) still unprocessed")
            time.sleep(0.5)  # the poll interval; the deadline above bounds the wait
    finally:
        client.close()


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_message(settings: Settings) -> None:
    assert settings.mongodb_uri
    listener = ListenerProcess(settings)
    acked: set[str] = set()
    mismatched: list[str] = []

    async def killer() -> None:
        loop = asyncio.get_running_loop()
        for k in range(1, KILLS + 1):
            while len(acked) < k * MESSAGES // (KILLS + 1):
                await asyncio.sleep(0.05)
            await loop.run_in_executor(None, listener.kill)
            await loop.run_in_executor(None, listener.start)

    async def run() -> None:
        kills = asyncio.create_task(killer())
        await asyncio.gather(*(sender(n, listener, acked, mismatched) for n in range(CONNECTIONS)))
        await kills

    listener.start()
    try:
        asyncio.run(run())
        _, drained = wait_until_processed(settings, {stored_id(c) for c in acked})
    finally:
        listener.stop()
    print(f"backlog drained {drained:.1f} s after the last AA")

    assert listener.generation == KILLS + 1
    assert not mismatched
    assert len(acked) == MESSAGES
    inbox = MongoInbox(settings.mongodb_uri, settings.database)
    db = MongoClient(settings.mongodb_uri)[settings.database]
    try:
        records = {r.control_id: r for r in inbox.list_recent(limit=MESSAGES * 2)}
        assert set(records) == acked  # nothing lost, nothing extra
        assert {r.status for r in records.values()} == {PROCESSED}
        first_runs = {d["ctl"]: d["at"] for d in db[RESOURCES].find({}, {"ctl": 1, "at": 1})}
        for n in range(CONNECTIONS):  # one sender's messages from one connection: in send order
            sent = [f"K{n}-{i}" for i in range(n, MESSAGES, CONNECTIONS)]
            ran = sorted(sent, key=lambda c: first_runs[c])
            assert ran == sent, f"connection {n}: processed out of order"
        resources = [d["_id"] for d in db[RESOURCES].find({}, {"_id": 1})]
        assert sorted(resources) == sorted(stored_id(c) for c in acked)
        rerun = Counter(d["msg"] for d in db[RERUNS].find({}, {"msg": 1}))
        print(f"{len(acked)} acknowledged over {listener.generation} listener runs; re-run: {len(rerun)}")
        # Only messages processed when a kill struck, before their outcome was recorded.
        assert len(rerun) <= KILLS * CONNECTIONS, rerun
        assert set(rerun) <= set(resources)
    finally:
        inbox.drop()
        db.client.drop_database(settings.database)
        db.client.close()
        inbox.close()
