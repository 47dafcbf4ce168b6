"""The HL7 inbox on the real store: durable intake, duplicates by _id, outcomes by attempt."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from fhir_server.repository.base import StoreError
from fhir_server.repository.inbox import ERROR, PROCESSED, RECEIVED, Intake, MongoInbox, inbox_id


@pytest.fixture
def inbox(mongo_uri: str, database_name: str) -> Iterator[MongoInbox]:
    store = MongoInbox(mongo_uri, database_name)
    try:
        yield store
    finally:
        store.drop()
        store.close()


def intake(control_id: str, app: str = "LAB", facility: str = "HOSP", **extra: object) -> Intake:
    return Intake(
        raw=f"MSH|^~\\&|{app}|{facility}|||||ADT^A01|{control_id}|P|2.5\r".encode(),
        sending_application=app,
        sending_facility=facility,
        control_id=control_id,
        message_type="ADT^A01",
        received=extra.pop("received", datetime.now(UTC)),  # type: ignore[arg-type]
        remote="127.0.0.1:5000",
    )


def test_id_is_deterministic_and_depends_on_all_three_parts() -> None:
    assert inbox_id("LAB", "HOSP", "1") == inbox_id("LAB", "HOSP", "1")
    assert (
        len({inbox_id("LAB", "HOSP", "1"), inbox_id("LAB", "OTHER", "1"), inbox_id("LABX", "HOSP", "1")}) == 3
    )
    assert inbox_id("A", "BC", "1") != inbox_id("AB", "C", "1")


def test_receive_stores_the_raw_message_and_its_metadata(inbox: MongoInbox) -> None:
    item = intake("C1")
    record, duplicate = inbox.receive(item)
    assert not duplicate
    stored = inbox.get(record.id)
    assert stored is not None
    assert stored.raw == item.raw
    assert (stored.sending_application, stored.sending_facility, stored.control_id) == ("LAB", "HOSP", "C1")
    assert stored.remote == "127.0.0.1:5000"
    assert stored.status == RECEIVED
    assert abs(stored.received - item.received) < timedelta(milliseconds=1)


def test_same_sender_and_control_id_is_a_duplicate(inbox: MongoInbox) -> None:
    first, _ = inbox.receive(intake("C1"))
    again, duplicate = inbox.receive(intake("C1"))
    assert duplicate
    assert again.id == first.id
    _, other_facility = inbox.receive(intake("C1", facility="ELSEWHERE"))
    assert not other_facility


def test_group_commit_reports_duplicates_per_item(inbox: MongoInbox) -> None:
    inbox.receive(intake("old"))
    results = inbox.receive_many([intake("a"), intake("old"), intake("b"), intake("a")])
    assert [dup for _, dup in results] == [False, True, False, True]
    assert {r.control_id for r, _ in results} == {"a", "old", "b"}


def test_duplicate_carries_the_status_of_the_first(inbox: MongoInbox) -> None:
    record, _ = inbox.receive(intake("C1"))
    assert inbox.mark_processed(record, ["Patient/p1"], ack="AA")
    again, duplicate = inbox.receive(intake("C1"))
    assert duplicate
    assert again.status == PROCESSED
    assert again.resources == ["Patient/p1"]
    assert again.ack == "AA"


def test_outcomes_are_attempts_and_the_newest_wins(inbox: MongoInbox) -> None:
    record, _ = inbox.receive(intake("C1"))
    assert inbox.mark_error(record, "PID-3 missing", 101, ack="AE")
    failed = inbox.get(record.id)
    assert failed is not None
    assert (failed.status, failed.error, failed.error_code, failed.attempts) == (
        ERROR,
        "PID-3 missing",
        101,
        1,
    )
    assert inbox.mark_processed(failed, ["Patient/1"], ack="AA")
    done = inbox.get(record.id)
    assert done is not None
    assert (done.status, done.error, done.attempts, done.resources) == (PROCESSED, None, 2, ["Patient/1"])


def test_a_racing_second_outcome_for_the_same_attempt_is_refused(inbox: MongoInbox) -> None:
    record, _ = inbox.receive(intake("C1"))
    assert inbox.mark_processed(record, [])
    assert not inbox.mark_processed(record, [])  # same attempt number, computed from the same read


def test_unprocessed_lists_only_messages_without_outcome(inbox: MongoInbox) -> None:
    done, _ = inbox.receive(intake("done"))
    inbox.mark_processed(done, [])
    inbox.receive(intake("pending"))
    assert [r.control_id for r in inbox.unprocessed()] == ["pending"]


def test_list_recent_filters_by_status_and_time(inbox: MongoInbox) -> None:
    now = datetime.now(UTC)
    inbox.receive(intake("old", received=now - timedelta(days=2)))
    new, _ = inbox.receive(intake("new", received=now))
    inbox.mark_error(new, "boom")
    assert [r.control_id for r in inbox.list_recent()] == ["new", "old"]
    assert [r.control_id for r in inbox.list_recent(status=ERROR)] == ["new"]
    assert [r.control_id for r in inbox.list_recent(since=now - timedelta(hours=1))] == ["new"]
    assert [r.control_id for r in inbox.list_recent(limit=1)] == ["new"]


def test_unreachable_store_is_a_store_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = MongoInbox(f"mongodb://127.0.0.1:{port}/?directConnection=true", "x", timeout_ms=200)
    try:
        with pytest.raises(StoreError):
            dead.receive(intake("C1"))
    finally:
        dead.close()
