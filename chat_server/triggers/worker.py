"""The trigger worker: every server process runs one. It claims due sends with leases (so a
send goes out once however many processes run) and delivers them. A commit that scheduled a
send wakes it at once; otherwise it looks every `trigger_poll_seconds`. The database is the
truth: nothing is lost if a wake-up is."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from datetime import datetime

from ..actions.trigger_delivery import Outcome, claim, contacts_of, deliver
from ..models.types import utcnow
from ..runtime import Runtime

log = logging.getLogger(__name__)
PARALLEL_SENDS = 16


class TriggerWorker:
    def __init__(self, rt: Runtime, poll_seconds: float = 1.0) -> None:
        self.rt = rt
        self.poll_seconds = poll_seconds
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="trigger worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def run_once(self, now: datetime | None = None) -> list[Outcome]:
        """Deliver what is due now (a test passes its own clock)."""
        outcomes: list[Outcome] = []
        while True:
            ids = await claim(self.rt, self.owner, now or utcnow())
            if not ids:
                return outcomes
            outcomes += await self._deliver_all(ids, now)

    async def _deliver_all(self, ids: list[int], now: datetime | None) -> list[Outcome]:
        """Sends to different contacts go out side by side: each spends most of its time
        waiting on its own writes (its timeline event joins the busy event writer's next
        batch), and one after another they queued behind each other for seconds. A contact's
        own sends stay one after another, in order, so its cap and frequencies see each other."""
        by_contact: dict[int, list[int]] = {}
        for send_id, contact_id in (await contacts_of(self.rt, ids)).items():
            by_contact.setdefault(contact_id, []).append(send_id)
        done: dict[int, Outcome] = {}
        gate = asyncio.Semaphore(PARALLEL_SENDS)

        async def one_contact(send_ids: list[int]) -> None:
            async with gate:
                for send_id in sorted(send_ids, key=ids.index):
                    done[send_id] = await deliver(self.rt, send_id, self.owner, now)

        results = await asyncio.gather(*(one_contact(group) for group in by_contact.values()), return_exceptions=True)
        for failed in results:  # the others have finished by now: none is left running unwatched
            if isinstance(failed, BaseException):
                raise failed
        return [done.get(i, Outcome("lost")) for i in ids]

    async def _forever(self) -> None:
        due = self.rt.triggers_due
        while True:
            due.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("trigger worker pass failed")
            try:
                await asyncio.wait_for(due.wait(), self.poll_seconds)
            except TimeoutError:
                pass
