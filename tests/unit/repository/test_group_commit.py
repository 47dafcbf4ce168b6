"""Group commit: callers share batches, return only once stored, and fail loudly."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest

from fhir_server import outcomes
from fhir_server.repository.group_commit import GroupCommit

WAIT = 10.0  # seconds; only reached when the code under test is broken


class Store:
    """A write function whose first call can be held, so that later callers queue up."""

    def __init__(self, hold_first: bool = False) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.fail_next: Exception | None = None
        self.refuse: set[str] = set()

    def __call__(self, docs: list[dict[str, Any]]) -> Mapping[int, outcomes.FhirError]:
        self.entered.set()
        assert self.release.wait(WAIT)
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.batches.append(list(docs))
        return {
            i: outcomes.Conflict(f"{d['_id']} exists") for i, d in enumerate(docs) if d["_id"] in self.refuse
        }

    def stored(self) -> list[str]:
        return [d["_id"] for batch in self.batches for d in batch]


class Caller(threading.Thread):
    """One request thread: submits its documents and keeps what happened."""

    def __init__(self, commit: GroupCommit, *ids: str) -> None:
        super().__init__(daemon=True)
        self.commit = commit
        self.ids = ids
        self.error: Exception | None = None
        self.returned = threading.Event()

    def run(self) -> None:
        try:
            self.commit.submit([{"_id": i} for i in self.ids])
        except Exception as exc:
            self.error = exc
        self.returned.set()


def queued(commit: GroupCommit, count: int) -> None:
    """Wait until ``count`` documents wait for the next batch (the writer is held)."""
    done = threading.Event()

    def probe() -> None:
        while commit._queued < count:
            threading.Event().wait(0.001)
        done.set()

    threading.Thread(target=probe, daemon=True).start()
    assert done.wait(WAIT)


def test_a_lone_caller_returns_once_its_documents_are_stored() -> None:
    store = Store()
    commit = GroupCommit(store, name="test")
    commit.submit([{"_id": "a"}, {"_id": "b"}])
    assert store.stored() == ["a", "b"]  # stored before submit returned
    commit.close()


def test_callers_arriving_during_a_write_share_the_next_one() -> None:
    store = Store(hold_first=True)
    commit = GroupCommit(store, name="test")
    first = Caller(commit, "first")
    first.start()
    assert store.entered.wait(WAIT)
    others = [Caller(commit, f"c{n}", f"c{n}-2") for n in range(5)]
    for caller in others:
        caller.start()
    queued(commit, 10)
    assert not any(c.returned.is_set() for c in [first, *others])  # nobody returns before its write
    store.release.set()
    for caller in [first, *others]:
        assert caller.returned.wait(WAIT) and caller.error is None
    assert len(store.batches) == 2 and store.batches[0] == [{"_id": "first"}]
    assert sorted(d["_id"] for d in store.batches[1]) == sorted(i for c in others for i in c.ids)
    commit.close()


def test_a_store_failure_fails_every_caller_of_that_batch_and_the_next_batch_retries() -> None:
    store = Store(hold_first=True)
    store.fail_next = outcomes.StoreUnavailable("The document store is unavailable; retry later")
    commit = GroupCommit(store, name="test")
    failed = Caller(commit, "lost")
    failed.start()
    assert store.entered.wait(WAIT)
    store.release.set()
    assert failed.returned.wait(WAIT)
    assert isinstance(failed.error, outcomes.StoreUnavailable) and failed.error.status == 503
    commit.submit([{"_id": "later"}])  # the store is back: the next batch goes through
    assert store.stored() == ["later"]
    commit.close()


def test_a_driver_error_becomes_a_503_not_a_hang() -> None:
    store = Store()
    store.fail_next = ConnectionError("socket closed")
    commit = GroupCommit(store, name="test")
    with pytest.raises(outcomes.StoreUnavailable) as caught:
        commit.submit([{"_id": "x"}])
    assert isinstance(caught.value.__cause__, ConnectionError)
    commit.close()


def test_a_refused_document_fails_only_its_own_caller_with_its_own_error() -> None:
    store = Store(hold_first=True)
    store.refuse = {"bad"}
    commit = GroupCommit(store, name="test")
    first = Caller(commit, "first")
    first.start()
    assert store.entered.wait(WAIT)
    good, bad = Caller(commit, "good-1", "good-2"), Caller(commit, "bad", "bad-2")
    good.start()
    bad.start()
    queued(commit, 4)
    store.release.set()
    for caller in (first, good, bad):
        assert caller.returned.wait(WAIT)
    assert first.error is None and good.error is None
    assert isinstance(bad.error, outcomes.Conflict) and "bad exists" in str(bad.error)
    commit.close()


def test_the_queue_is_bounded_and_refuses_rather_than_waits() -> None:
    store = Store(hold_first=True)
    commit = GroupCommit(store, name="test", max_pending=3)
    first = Caller(commit, "first")
    first.start()
    assert store.entered.wait(WAIT)
    waiting = Caller(commit, "w1", "w2", "w3")
    waiting.start()
    queued(commit, 3)
    with pytest.raises(outcomes.StoreUnavailable, match="Too many"):
        commit.submit([{"_id": "one-too-many"}])
    store.release.set()
    assert waiting.returned.wait(WAIT) and waiting.error is None
    assert "one-too-many" not in store.stored()
    commit.close()


def test_a_caller_is_not_kept_past_its_timeout() -> None:
    store = Store(hold_first=True)
    commit = GroupCommit(store, name="test", timeout=0.05)
    with pytest.raises(outcomes.StoreUnavailable, match="did not confirm"):
        commit.submit([{"_id": "slow"}])
    store.release.set()
    commit.close()


def test_close_stores_what_is_queued_before_it_returns() -> None:
    store = Store(hold_first=True)
    commit = GroupCommit(store, name="test")
    callers = [Caller(commit, f"c{n}") for n in range(4)]
    callers[0].start()
    assert store.entered.wait(WAIT)
    for caller in callers[1:]:
        caller.start()
    queued(commit, 3)
    closing = threading.Thread(target=commit.close, daemon=True)
    closing.start()
    store.release.set()
    closing.join(WAIT)
    assert not closing.is_alive()
    assert sorted(store.stored()) == ["c0", "c1", "c2", "c3"]
    for caller in callers:
        assert caller.returned.wait(WAIT) and caller.error is None


def test_after_close_a_caller_writes_inline() -> None:
    store = Store()
    commit = GroupCommit(store, name="test")
    commit.close()
    commit.submit([{"_id": "late"}])
    assert store.stored() == ["late"]
    store.fail_next = outcomes.StoreUnavailable("down")
    with pytest.raises(outcomes.StoreUnavailable):
        commit.submit([{"_id": "lost"}])
