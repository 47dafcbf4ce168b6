"""Racing writers over real HTTP: one winner per If-Match round, no lost updates, no gaps."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import requests

from tests.integration.helpers import headers, patient

THREADS = 10
ROUNDS = 50


@pytest.mark.slow
def test_if_match_races_have_exactly_one_winner_per_round(live_url: str) -> None:
    created = requests.post(f"{live_url}/fhir/Patient", json=patient(), headers=headers(), timeout=10).json()
    url = f"{live_url}/fhir/Patient/{created['id']}"
    barrier = threading.Barrier(THREADS)
    results: list[Counter[int]] = [Counter() for _ in range(ROUNDS)]
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        session = requests.Session()
        try:
            for rnd in range(ROUNDS):
                barrier.wait(timeout=60)
                body = {**created, "birthDate": f"19{rnd:02d}-01-01", "gender": ["male", "female"][n % 2]}
                response = session.put(
                    url, json=body, headers=headers(**{"If-Match": f'W/"{rnd + 1}"'}), timeout=30
                )
                with lock:
                    results[rnd][response.status_code] += 1
                barrier.wait(timeout=60)
        except BaseException as exc:  # surfaced below
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    for rnd, counts in enumerate(results):
        assert counts[200] == 1, (rnd, counts)
        assert counts[412] == THREADS - 1, (rnd, counts)
        assert sum(v for k, v in counts.items() if k >= 500) == 0
    history = requests.get(f"{url}/_history?_count=1000", timeout=30).json()
    versions = [int(e["resource"]["meta"]["versionId"]) for e in history["entry"]]
    assert versions == list(range(ROUNDS + 1, 0, -1))
    current = requests.get(url, timeout=10).json()
    assert current["meta"]["versionId"] == str(ROUNDS + 1)


@pytest.mark.slow
def test_unconditional_concurrent_updates_lose_nothing(live_url: str) -> None:
    created = requests.post(f"{live_url}/fhir/Patient", json=patient(), headers=headers(), timeout=10).json()
    url = f"{live_url}/fhir/Patient/{created['id']}"
    per_thread = 10
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        session = requests.Session()
        for _ in range(per_thread):
            status = session.put(url, json=created, headers=headers(), timeout=30).status_code
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == Counter({200: 8 * per_thread})
    history = requests.get(f"{url}/_history?_count=1000", timeout=30).json()
    versions = sorted(int(e["resource"]["meta"]["versionId"]) for e in history["entry"])
    assert versions == list(range(1, 8 * per_thread + 2))
