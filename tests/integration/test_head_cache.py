"""The read cache of heads (repository/head_cache.py) never serves a version older than
one already written, whoever wrote it, against the real store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from fhir_server.repository.base import StoredVersion
from fhir_server.repository.head_cache import SLOTS, HeadCache, WriteClock, quiet, slot_of
from fhir_server.repository.mongo import MongoRepository
from fhir_server.repository.records import HEAD_PREFIX
from fhir_server.services.resources import ResourceService
from fhir_server.settings import Settings
from tests.integration.helpers import headers, patient


def create(client: FlaskClient, family: str) -> str:
    response = client.post(
        "/fhir/Patient", data=orjson.dumps(patient(name=[{"family": family}])), headers=headers()
    )
    assert response.status_code == 201
    return str(response.json["id"])


def read(client: FlaskClient, id: str) -> dict[str, Any]:
    response = client.get(f"/fhir/Patient/{id}", headers=headers())
    assert response.status_code == 200
    return dict(response.json)


@pytest.fixture
def store_reads(repository: MongoRepository, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids the repository read from the store (cache misses)."""
    seen: list[str] = []
    original = repository._read_head

    def counting(resource_type: str, id: str) -> StoredVersion | None:
        seen.append(id)
        return original(resource_type, id)

    monkeypatch.setattr(repository, "_read_head", counting)
    return seen


@pytest.fixture
def other(settings: Settings) -> Iterator[MongoRepository]:
    """Another process's repository: its own connection and its own map of the clock."""
    assert settings.mongodb_uri
    repository = MongoRepository(settings.mongodb_uri, settings.database)
    yield repository
    repository.close()


def test_repeated_reads_are_served_from_memory(client: FlaskClient, store_reads: list[str]) -> None:
    id = create(client, "Cached")
    first = read(client, id)
    assert read(client, id) == first == read(client, id)
    assert store_reads == [id]


def test_a_write_by_another_process_is_seen_by_the_next_read(
    client: FlaskClient, settings: Settings, store_reads: list[str]
) -> None:
    id = create(client, "Before")
    assert read(client, id)["name"][0]["family"] == "Before"
    script = textwrap.dedent(
        f"""
        from fhir_server.repository.mongo import MongoRepository
        from fhir_server.services.resources import ResourceService
        repository = MongoRepository({settings.mongodb_uri!r}, {settings.database!r})
        service = ResourceService(repository)
        body = service.read("Patient", {id!r}).resource
        body["name"] = [{{"family": "After"}}]
        print(service.update("Patient", {id!r}, body).stored.version)
        repository.close()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"
    after = read(client, id)
    assert after["meta"]["versionId"] == "2"
    assert after["name"][0]["family"] == "After"
    assert store_reads == [id, id]


def test_a_read_that_raced_a_write_is_not_kept(
    client: FlaskClient, repository: MongoRepository, other: MongoRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    id = create(client, "Old")
    original = repository._read_head

    def read_then_someone_writes(resource_type: str, id_: str) -> StoredVersion | None:
        stored = original(resource_type, id_)  # the old version, read before the write
        monkeypatch.setattr(repository, "_read_head", original)
        service = ResourceService(other)
        body = service.read("Patient", id)
        assert body.resource is not None
        service.update("Patient", id, {**body.resource, "name": [{"family": "New"}]})
        return stored

    monkeypatch.setattr(repository, "_read_head", read_then_someone_writes)
    assert read(client, id)["name"][0]["family"] == "Old"  # began before the write: a valid order
    assert read(client, id)["name"][0]["family"] == "New"


def test_a_slot_with_a_writer_in_flight_is_read_from_the_store(
    client: FlaskClient, repository: MongoRepository, other: MongoRepository, store_reads: list[str]
) -> None:
    id = create(client, "Old")
    read(client, id)
    clock = other._clock()
    with clock.writing([f"Patient/{id}"]):  # a writer between its two clock steps ...
        head = repository._db[HEAD_PREFIX + "Patient"].find_one({"_id": id})
        assert head is not None
        changed = orjson.loads(head["json"])
        changed["name"] = [{"family": "Mid-write"}]
        # ... whose store write has landed (as if it then died before telling the clock)
        repository._db[HEAD_PREFIX + "Patient"].update_one(
            {"_id": id}, {"$set": {"json": orjson.dumps(changed).decode()}}
        )
        assert read(client, id)["name"][0]["family"] == "Mid-write"
        assert read(client, id)["name"][0]["family"] == "Mid-write"
    assert store_reads == [id, id, id]


def test_clearing_the_clock_forgets_writers_that_died(
    client: FlaskClient, repository: MongoRepository, other: MongoRepository, store_reads: list[str]
) -> None:
    id = create(client, "Stuck")
    dead = other._clock().writing([f"Patient/{id}"])
    dead.__enter__()  # begun and never ended: the process died
    read(client, id)
    read(client, id)
    assert store_reads == [id, id]  # never from memory while a writer may be in flight
    repository.clear_write_clock()
    read(client, id)
    read(client, id)
    assert store_reads == [id, id, id]


def test_every_process_of_a_database_shares_one_clock(
    repository: MongoRepository, other: MongoRepository
) -> None:
    assert repository._clock().path == other._clock().path
    before = repository._clock().word("Patient/x")
    with other._clock().writing(["Patient/x"]):
        assert repository._clock().word("Patient/x") != before
    assert repository._clock().word("Patient/x") == before + 1  # one write finished
    assert slot_of("Patient/x") == slot_of("Patient/x") != slot_of("Patient/y")


def test_the_cache_stays_within_its_bytes(tmp_path: Path) -> None:
    clock = WriteClock(tmp_path / "clock")
    cache = HeadCache(clock, max_bytes=64 * 1024)
    raw = b"x" * 1000
    for n in range(500):
        cache.put(
            StoredVersion("Patient", str(n), 1, datetime.now(UTC), False, "POST", raw),
            clock.word(f"Patient/{n}"),
        )
    assert cache._bytes <= 64 * 1024
    assert cache.get("Patient", "499", clock.word("Patient/499")) is not None  # the newest stay
    assert cache.get("Patient", "0", clock.word("Patient/0")) is None  # the oldest went
    assert os.path.getsize(clock.path) == SLOTS * 8
    clock.close()


def test_a_removed_clock_file_is_followed_by_readers_and_writers(tmp_path: Path) -> None:
    """If the file goes (a temp cleaner, systemd RemoveIPC), the next process makes a new
    one: old readers must not trust what they cached, old writers must write the new one."""
    path = tmp_path / "clock"
    reader, writer = WriteClock(path, recheck_seconds=0), WriteClock(path, recheck_seconds=0)
    cached = reader.word("Patient/p")
    with writer.writing(["Patient/q"]):  # in flight across the removal
        path.unlink()
        newcomer = WriteClock(path)  # a process started after the removal
        with newcomer.writing(["Patient/p"]):
            pass
    assert reader.word("Patient/p") != cached  # a new generation: every entry is refused
    assert quiet(reader.word("Patient/q"))  # the writer ended in the new file, not stuck
    assert newcomer.word("Patient/q") & ((1 << 64) - 1) == 1
    for clock in (reader, writer, newcomer):
        clock.close()
