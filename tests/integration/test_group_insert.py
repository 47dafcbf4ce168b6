"""Group insert (repository/group_insert.py): concurrent writers share one insert_many."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import ServerSelectionTimeoutError

from fhir_server.repository.group_insert import GroupInsert
from fhir_server.repository.mongo import MongoRepository
from fhir_server.search.request import parse_query_string
from fhir_server.services.resources import ResourceService


class Recording:
    """A collection whose first insert_many waits until released, recording each command."""

    def __init__(self, collection: Collection[dict[str, Any]]) -> None:
        self.collection = collection
        self.commands: list[list[Any]] = []
        self.first_started, self.release = threading.Event(), threading.Event()

    def insert_many(self, docs: list[dict[str, Any]], ordered: bool = True) -> Any:
        self.commands.append([d["_id"] for d in docs])
        if len(self.commands) == 1:
            self.first_started.set()
            self.release.wait(10)
        return self.collection.insert_many(docs, ordered=ordered)

    def __getattr__(self, name: str) -> Any:  # everything else: the real collection
        return getattr(self.collection, name)


def test_writers_arriving_during_an_insert_share_the_next_one(repository: MongoRepository) -> None:
    recording = Recording(repository._db["group_test"])
    repository._db["group_test"].insert_one({"_id": "taken"})
    inserts = GroupInsert(recording)  # type: ignore[arg-type]
    answers: dict[str, set[int]] = {}

    def insert(name: str, docs: list[dict[str, Any]]) -> None:
        answers[name] = inserts.insert(docs)

    first = threading.Thread(target=insert, args=("first", [{"_id": "a"}]))
    first.start()
    assert recording.first_started.wait(10)
    queued = [
        threading.Thread(
            target=insert, args=(f"w{n}", [{"_id": f"b{n}"}, {"_id": "taken" if n == 2 else f"c{n}"}])
        )
        for n in range(4)
    ]
    for thread in queued:
        thread.start()
    deadline = time.monotonic() + 10
    while len(inserts._group._queue) < 4 and time.monotonic() < deadline:  # queued behind the running insert
        threading.Event().wait(0.001)
    recording.release.set()
    for thread in [first, *queued]:
        thread.join(10)
    assert len(recording.commands) == 2 and sorted(recording.commands[1]) == sorted(
        ["b0", "c0", "b1", "c1", "b2", "taken", "b3", "c3"]
    )
    # Each writer learns about its own duplicates only, by position in its own list.
    assert answers == {"first": set(), "w0": set(), "w1": set(), "w2": {1}, "w3": set()}
    stored = {d["_id"] for d in repository._db["group_test"].find()}
    assert stored == {"taken", "a", "b0", "c0", "b1", "c1", "b2", "b3", "c3"}


def test_a_failed_command_fails_every_writer_of_its_batch() -> None:
    client: MongoClient[dict[str, Any]] = MongoClient("mongodb://127.0.0.1:1", serverSelectionTimeoutMS=100)
    inserts = GroupInsert(client["x"]["y"])
    errors: list[BaseException] = []

    def insert(n: int) -> None:
        try:
            inserts.insert([{"_id": n}])
        except ServerSelectionTimeoutError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 5
    assert not inserts._group._busy and not inserts._group._queue  # nobody left waiting for a leader
    client.close()


@pytest.mark.parametrize("writers", [1, 8])
def test_concurrent_creates_of_one_id_claim_it_once(repository: MongoRepository, writers: int) -> None:
    inserts = GroupInsert(repository._db["claims_test"])
    results: list[set[int]] = []
    barrier = threading.Barrier(writers)

    def claim() -> None:
        barrier.wait()
        results.append(inserts.insert([{"_id": "same"}]))

    threads = [threading.Thread(target=claim) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(len(r) for r in results) == [0] + [1] * (writers - 1)


def test_concurrent_creates_share_one_batch_and_claim_each_id_once(repository: MongoRepository) -> None:
    """First versions of a type go in groups: postings, claims and heads are one command
    each per batch; two creates of one id in a batch: one wins, the other is an update."""
    service = ResourceService(repository)
    repository.ensure_indexes("Patient")
    recording = Recording(repository._search_docs("Patient"))
    repository._search_collections["Patient"] = recording  # type: ignore[assignment]
    versions: dict[str, list[int]] = {}

    def put(id: str, name: str) -> None:
        body = {"resourceType": "Patient", "id": id, "identifier": [{"system": "urn:t", "value": id}]}
        stored = service.update("Patient", id, {**body, "name": [{"family": name}]}).stored
        versions.setdefault(id, []).append(stored.version)

    first = threading.Thread(target=put, args=("a", "A"))
    first.start()
    assert recording.first_started.wait(10)
    queued = [
        threading.Thread(target=put, args=args) for args in [("b", "B"), ("c", "C"), ("d", "D1"), ("d", "D2")]
    ]
    for thread in queued:
        thread.start()
    group = repository._first_versions("Patient")
    deadline = time.monotonic() + 10
    while len(group._queue) < 4 and time.monotonic() < deadline:  # queued behind the running batch
        threading.Event().wait(0.001)
    recording.release.set()
    for thread in [first, *queued]:
        thread.join(10)
    assert recording.commands[0] == ["a"]
    assert sorted(recording.commands[1]) == ["b", "c", "d", "d"]  # one claim command for four
    assert {id: sorted(v) for id, v in versions.items()} == {"a": [1], "b": [1], "c": [1], "d": [1, 2]}
    for id in "abcd":
        found = service.search(parse_query_string("Patient", f"identifier=urn:t|{id}"))
        assert [s.id for s in found.matches] == [id]
