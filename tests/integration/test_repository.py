"""The repository's commit protocol, including writers that die after their commit point."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fhir_server.repository.base import HistoryQuery, NewVersion, VersionClaimed
from fhir_server.repository.mongo import HEAD_PREFIX, HISTORY_PREFIX, MongoRepository


def version(n: int, *, at: datetime | None = None, gender: str = "male") -> NewVersion:
    resource = {"resourceType": "Patient", "id": "p1", "gender": gender, "meta": {"versionId": str(n)}}
    return NewVersion("Patient", "p1", n, at or datetime.now(UTC), "PUT", resource)


def test_commit_and_read(repository: MongoRepository) -> None:
    repository.commit(version(1))
    head = repository.read("Patient", "p1")
    assert head is not None and head.version == 1 and head.resource is not None
    assert repository.vread("Patient", "p1", 1) == head


def test_second_claim_of_a_version_loses(repository: MongoRepository) -> None:
    repository.commit(version(1))
    with pytest.raises(VersionClaimed):
        repository.commit(version(1, gender="female"))
    head = repository.read("Patient", "p1")
    assert head is not None and head.resource is not None and head.resource["gender"] == "male"


def test_head_left_behind_by_dead_writer_is_caught_up(repository: MongoRepository) -> None:
    repository.commit(version(1))
    # A writer died after inserting its version record (the commit point), before the head.
    record = {
        "_id": "p1/2",
        "id": "p1",
        "v": 2,
        "lu": datetime.now(UTC),
        "del": False,
        "m": "PUT",
        "json": '{"resourceType": "Patient", "id": "p1", "gender": "female"}',
    }
    repository._db[HISTORY_PREFIX + "Patient"].insert_one(record)
    stale = repository.read("Patient", "p1")
    assert stale is not None and stale.version == 1
    assert repository.recover(datetime.now(UTC) - timedelta(hours=1)) == 1
    head = repository.read("Patient", "p1")
    assert head is not None and head.version == 2


def test_a_slow_writer_cannot_leave_an_older_head(repository: MongoRepository) -> None:
    repository.commit(version(1))
    repository.commit(version(2))
    # Simulate the slow writer of version 1 overwriting the head after version 2 landed...
    repository._db[HEAD_PREFIX + "Patient"].replace_one(
        {"_id": "p1"}, {"v": 1, "lu": datetime.now(UTC), "del": False, "json": "{}"}
    )
    # ...the next committer notices the newer claim and repairs rather than lose it.
    with pytest.raises(VersionClaimed):
        repository.commit(version(2, gender="other"))
    head = repository.catch_up("Patient", "p1")
    assert head is not None and head.version == 2


def test_merged_history_orders_across_types(repository: MongoRepository) -> None:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    repository.commit(version(1, at=base))
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}}
    repository.commit(NewVersion("Observation", "o1", 1, base + timedelta(seconds=1), "POST", obs))
    repository.commit(version(2, at=base + timedelta(seconds=2)))
    page = repository.history(HistoryQuery(count=10, till=base + timedelta(days=1)))
    assert [(e.resource_type, e.version) for e in page.entries] == [
        ("Patient", 2),
        ("Observation", 1),
        ("Patient", 1),
    ]
    assert page.total == 3


def test_a_resource_written_once_is_one_record(repository: MongoRepository) -> None:
    repository.commit(version(1))
    assert repository._db[HISTORY_PREFIX + "Patient"].count_documents({}) == 0
    assert repository.vread("Patient", "p1", 1) is not None
    page = repository.history(HistoryQuery("Patient", count=10))
    assert [(e.id, e.version) for e in page.entries] == [("p1", 1)]
    assert page.total == 1


def test_first_update_keeps_version_one(repository: MongoRepository) -> None:
    first = repository.commit(version(1))
    repository.commit(
        NewVersion("Patient", "p1", 2, datetime.now(UTC), "PUT", {"resourceType": "Patient"}, previous=first)
    )
    v1 = repository.vread("Patient", "p1", 1)
    assert v1 is not None and v1.resource is not None and v1.resource["gender"] == "male"
    page = repository.history(HistoryQuery("Patient", count=10))
    assert [(e.id, e.version) for e in page.entries] == [("p1", 2), ("p1", 1)]
    assert page.total == 2


def test_interrupted_first_update_shows_version_one_once(repository: MongoRepository) -> None:
    first = repository.commit(version(1))
    # The first update copied version 1 into history, then died before claiming version 2.
    from fhir_server.repository.records import record_of

    repository._db[HISTORY_PREFIX + "Patient"].insert_one(record_of(first))
    page = repository.history(HistoryQuery("Patient", count=10))
    assert [(e.id, e.version) for e in page.entries] == [("p1", 1)]
    instance = repository.history(HistoryQuery("Patient", "p1", count=10))
    assert [(e.id, e.version) for e in instance.entries] == [("p1", 1)]
    # the next write carries on normally
    repository.commit(
        NewVersion("Patient", "p1", 2, datetime.now(UTC), "PUT", {"resourceType": "Patient"}, previous=first)
    )
    assert repository.history(HistoryQuery("Patient", count=10)).total == 2


def test_create_that_died_before_its_head_is_recovered(repository: MongoRepository) -> None:
    from fhir_server.repository.mongo import SEARCH_PREFIX

    # The create claimed version 1 with its searchable record, then died before the head.
    doc = {
        "_id": "p9",
        "v": 1,
        "lu": datetime.now(UTC),
        "del": False,
        "m": "POST",
        "json": '{"id": "p9"}',
        "ix": [],
    }
    repository._db[SEARCH_PREFIX + "Patient"].insert_one(doc)
    assert repository.read("Patient", "p9") is None
    with pytest.raises(VersionClaimed):  # nobody else can create it meanwhile
        repository.commit(
            NewVersion("Patient", "p9", 1, datetime.now(UTC), "POST", {"resourceType": "Patient"})
        )
    assert repository.recover(datetime.now(UTC) - timedelta(hours=1)) == 1
    head = repository.read("Patient", "p9")
    assert head is not None and head.version == 1


def test_stale_searchable_record_is_rebuilt_from_history(repository: MongoRepository) -> None:
    from fhir_server.repository.mongo import SEARCH_PREFIX

    first = repository.commit(version(1))
    repository.commit(
        NewVersion(
            "Patient",
            "p1",
            2,
            datetime.now(UTC),
            "PUT",
            {"resourceType": "Patient", "gender": "female"},
            previous=first,
            index={"ix": ["gender\x1fc\x1ffemale"], "ir": [], "so": {}},
        )
    )
    # A slow writer put version 1's searchable record back after version 2 landed.
    repository._db[SEARCH_PREFIX + "Patient"].replace_one(
        {"_id": "p1"}, {"v": 1, "lu": datetime.now(UTC), "del": False, "json": "{}", "ix": []}
    )
    repository.catch_up("Patient", "p1")
    rebuilt = repository._db[SEARCH_PREFIX + "Patient"].find_one({"_id": "p1"})
    assert rebuilt is not None and rebuilt["v"] == 2 and rebuilt["ix"] == ["gender\x1fc\x1ffemale"]


def test_reindex_rebuilds_index_fields(repository: MongoRepository) -> None:
    from fhir_server.repository.mongo import SEARCH_PREFIX

    resource = {"resourceType": "Patient", "id": "p1", "gender": "male"}
    repository.commit(
        NewVersion(
            "Patient", "p1", 1, datetime.now(UTC), "POST", resource, index={"ix": [], "ir": [], "so": {}}
        )
    )

    def compute(body: dict) -> dict:
        return {"ix": [f"gender\x1fc\x1f{body['gender']}"], "ir": [], "so": {"gender": body["gender"]}}

    assert repository.reindex("Patient", compute) == 1
    doc = repository._db[SEARCH_PREFIX + "Patient"].find_one({"_id": "p1"})
    assert doc is not None and doc["ix"] == ["gender\x1fc\x1fmale"]
    assert repository.reindex("Patient", compute) == 0  # nothing left to change
