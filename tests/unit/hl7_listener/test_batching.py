"""Group commit: concurrent submits share flushes, each caller gets its own result."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from hl7_listener.batching import GroupCommit


def test_concurrent_items_share_a_flush_and_get_their_own_results() -> None:
    batches: list[list[int]] = []
    first_running, release = threading.Event(), threading.Event()

    def flush(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        first_running.set()
        release.wait(5)  # hold the first flush so the others queue up behind it
        return [i * 10 for i in items]

    async def go() -> list[int]:
        with ThreadPoolExecutor(2) as executor:
            commit: GroupCommit[int, int] = GroupCommit(flush, executor)
            first = asyncio.create_task(commit.submit(0))
            await asyncio.get_running_loop().run_in_executor(None, first_running.wait, 5)
            rest = [asyncio.create_task(commit.submit(i)) for i in range(1, 6)]
            await asyncio.sleep(0)
            release.set()
            return await asyncio.gather(first, *rest)

    assert asyncio.run(go()) == [0, 10, 20, 30, 40, 50]
    assert batches == [[0], [1, 2, 3, 4, 5]]


def test_batches_are_capped() -> None:
    batches: list[int] = []

    def flush(items: Sequence[int]) -> list[int]:
        batches.append(len(items))
        return list(items)

    async def go() -> list[int]:
        commit: GroupCommit[int, int] = GroupCommit(flush, None, max_batch=3)
        return await asyncio.gather(*(commit.submit(i) for i in range(7)))

    assert asyncio.run(go()) == list(range(7))
    assert max(batches) <= 3
    assert sum(batches) == 7


def test_a_failed_flush_fails_every_caller_of_that_batch_only() -> None:
    calls = 0

    def flush(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("store down")
        return list(items)

    async def go() -> None:
        commit: GroupCommit[int, int] = GroupCommit(flush, None)
        with pytest.raises(ConnectionError):
            await commit.submit(1)
        assert await commit.submit(2) == 2

    asyncio.run(go())
