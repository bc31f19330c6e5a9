"""The loop shared by the durable queues (outbound replies, webhook deliveries): claim what is
due under a lease, send each item in its own task while claiming goes on, wake at once when a
commit queued something, and on stop let the sends in hand finish and be recorded.

A send that hangs until its timeout holds back only its own item (and what the queue orders
behind it), never the others. The database is the truth: a lost wake-up costs one poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class QueueRunner(ABC, Generic[Item]):
    """Subclasses say how to claim and send; `what` names the queue in the log."""

    what = "queue"
    poll_seconds = 1.0
    max_in_flight = 20
    stop_grace_seconds = 10.0

    def __init__(self, wake: asyncio.Event) -> None:
        self.wake = wake  # set on commit of a queued item
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @abstractmethod
    async def claim(self, limit: int) -> list[Item]:
        """Up to `limit` due items, leased to this process."""

    @abstractmethod
    async def send(self, item: Item) -> None:
        """Send one item and record how it went (its own failures included)."""

    async def tend(self) -> None:
        """Housekeeping before each look at the queue (a subclass refreshes or prunes here)."""

    async def open(self) -> None:
        """Before the first claim (a subclass opens its HTTP session here)."""

    async def close(self) -> None:
        """After the last send has been recorded."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.what} worker")

    async def stop(self) -> None:
        """Let the sends in hand finish and be recorded (one cancelled halfway may have gone out
        unrecorded, and would go again once its lease ends); then stop."""
        if self._task:
            self._stopping = True
            self.wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.stop_grace_seconds)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        in_flight: set[asyncio.Task[None]] = set()
        await self.open()
        try:
            while not self._stopping:
                # Cleared before looking, not after: an item committed while we look wakes the
                # next wait at once instead of waiting for the poll.
                self.wake.clear()
                try:
                    await self.tend()
                    room = self.max_in_flight - len(in_flight)
                    items = await self.claim(room) if room > 0 else []
                    for item in items:
                        task = asyncio.create_task(self.send(item))
                        in_flight.add(task)
                        task.add_done_callback(lambda t: self._done(in_flight, t))
                    if items:
                        continue
                except Exception:
                    log.exception("the %s failed; retrying", self.what)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), self.poll_seconds)
            try:
                if in_flight:
                    await asyncio.gather(*in_flight, return_exceptions=True)
            except asyncio.CancelledError:  # the stop grace ran out
                for task in in_flight:
                    task.cancel()
                raise
        finally:
            await self.close()

    def _done(self, in_flight: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
        in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recording a send from the %s failed; it is tried again when its lease ends",
                      self.what, exc_info=task.exception())
        self.wake.set()  # the next item behind this one may be due now
