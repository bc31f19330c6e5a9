"""Group commit: writes that arrive while one is being committed are committed together next.

A busy site sends many small writes at once (every visitor's message is one). Each alone
costs a transaction; SQLite has one writer, so they would queue one transaction at a time.
Here the first write starts at once; whatever arrives meanwhile waits for it and then goes
in one transaction together. An idle server adds no delay, a busy one writes in batches.

One failing write must not fail its neighbours: when a batch fails, each of its writes is
retried alone and gets its own result or its own error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

WriteBatch = Callable[[list[T]], Awaitable[list[R]]]


class GroupCommit(Generic[T, R]):
    """`workers` batches may be written at once: one on SQLite (it has one writer anyway),
    a few on PostgreSQL, where batches of different conversations do not wait on each other
    and a batch's round trips to the database would otherwise leave the CPU idle."""

    def __init__(self, write: WriteBatch[T, R], max_batch: int = 200, workers: int = 1) -> None:
        self._write = write
        self._max_batch = max_batch
        self._workers = workers
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._runners: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """Write `item` (with whatever else is waiting) and return its result. A caller that
        goes away meanwhile does not withdraw the write: it is stored, and a retry finds it."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._runners) < self._workers:
            self._runners.add(asyncio.create_task(self._drain()))
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._write_batch(batch)
        finally:
            # Here, not in a done-callback: a waiter woken by the last batch may submit again
            # before such a callback runs, and would find every worker seemingly busy.
            current = asyncio.current_task()
            assert current is not None
            self._runners.discard(current)

    async def _write_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            for item, future in batch:
                await self._write_batch([(item, future)])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(future: asyncio.Future[R], result: R | None = None, exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
