"""Group commit: concurrent callers share one blocking store round trip.

The first caller's item is flushed at once (no added latency when traffic is light);
items that arrive while a flush is running wait for it and go together in the next one.
On the embedded store a batch of 100 inserts costs about as much as three single ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """``await submit(item)`` returns ``flush([..., item, ...])[i]`` for its own item.

    ``flush`` runs in ``executor``; if it raises, every caller of that batch gets the error.
    """

    def __init__(
        self, flush: Callable[[Sequence[T]], Sequence[R]], executor: Executor | None, max_batch: int = 256
    ) -> None:
        self._flush = flush
        self._executor = executor
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            items = [item for item, _ in batch]
            try:
                results = await loop.run_in_executor(self._executor, self._flush, items)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


__all__ = ["GroupCommit"]
