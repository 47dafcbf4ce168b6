"""Kill -9 the server during a stream of transactions: each is wholly there or wholly absent.

Several clients stream transaction Bundles (a patient, observations pointing at it, and a
conditional create of one shared practitioner) at a server process; the test kills it
with SIGKILL every few acknowledged transactions, while other requests are in flight,
and starts a new one (start-up recovery runs first, as in ``interop run``). At the end
every transaction that was acknowledged is complete, every other one is complete or
absent, and the shared practitioner exists exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_server.settings import Settings
from tests.integration.helpers import headers

CLIENTS = 4
TRANSACTIONS = 240
KILL_EVERY = 25  # acknowledged transactions between kills
OBSERVATIONS = 4
ROOT = Path(__file__).resolve().parents[2]


class ServerProcess:
    def __init__(self, settings: Settings) -> None:
        self.env = {
            **os.environ,
            "INTEROP_MONGODB_URI": settings.mongodb_uri or "",
            "INTEROP_MONGODB_DATABASE": settings.database,
            "INTEROP_AUTH": "disabled",
            "INTEROP_LOG_LEVEL": "ERROR",
        }
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.serve_app"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().strip()  # printed once it accepts connections
        assert port.isdigit(), "the server process did not start"
        self.url = f"http://127.0.0.1:{port}/fhir"

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerProcess]:
    process = ServerProcess(settings)
    process.start()
    try:
        yield process
    finally:
        process.kill()


def transaction(n: int) -> dict[str, Any]:
    marker = {"system": "urn:crash", "value": f"tx-{n}"}
    patient_url, practitioner_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": practitioner_url,
            "resource": {
                "resourceType": "Practitioner",
                "identifier": [{"system": "urn:crash", "value": "shared"}],
            },
            "request": {
                "method": "POST",
                "url": "Practitioner",
                "ifNoneExist": "identifier=urn:crash|shared",
            },
        },
        {
            "fullUrl": patient_url,
            "resource": {
                "resourceType": "Patient",
                "identifier": [marker],
                "generalPractitioner": [{"reference": practitioner_url}],
            },
            "request": {"method": "POST", "url": "Patient"},
        },
    ]
    for i in range(OBSERVATIONS):
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "identifier": [marker],
                    "code": {"text": f"reading {i}"},
                    "subject": {"reference": patient_url},
                    "performer": [{"reference": practitioner_url}],
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.mark.slow
def test_sigkill_during_transactions_leaves_each_whole_or_absent(server: ServerProcess) -> None:
    acknowledged: set[int] = set()
    attempted: set[int] = set()
    lock = threading.Lock()
    restarted = threading.Condition(lock)
    next_n = iter(range(TRANSACTIONS))
    state = {"generation": 0, "since_kill": 0, "kills": 0}

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                n = next(next_n, None)
                if n is None:
                    return
                attempted.add(n)
                url, generation = server.url, state["generation"]
            try:
                response = session.post(url, json=transaction(n), headers=headers(), timeout=60)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                # The server died before or while answering: not acknowledged, outcome unknown.
                with restarted:  # the server was killed under us: wait for the next one
                    assert restarted.wait_for(lambda g=generation: state["generation"] > g, timeout=120)
                continue
            assert response.status_code == 200, response.text
            with lock:
                acknowledged.add(n)
                state["since_kill"] += 1
                if state["since_kill"] >= KILL_EVERY and state["generation"] == generation:
                    server.kill()  # other clients are mid-request right now
                    state["kills"] += 1
                    server.start()
                    state["since_kill"] = 0
                    state["generation"] += 1
                    restarted.notify_all()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert state["kills"] >= 5
    session = requests.Session()

    def total(query: str) -> int:
        response = session.get(f"{server.url}/{query}", headers=headers(), timeout=60)
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    patients = session.get(
        f"{server.url}/Patient?_count=1000&_elements=identifier", headers=headers(), timeout=60
    ).json()
    present = [int(e["resource"]["identifier"][0]["value"][3:]) for e in patient_entries(patients)]
    assert len(present) == len(set(present)), "a transaction was applied twice"
    assert acknowledged <= set(present), "an acknowledged transaction is missing"
    assert set(present) <= attempted
    for n in attempted:
        observations = total(f"Observation?identifier=urn:crash|tx-{n}&_count=0")
        assert observations == (OBSERVATIONS if n in present else 0), f"transaction {n} is partial"
    assert total("Practitioner?_count=0") == 1


def patient_entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]
