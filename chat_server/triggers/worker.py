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

from ..actions.trigger_delivery import Outcome, claim, deliver
from ..models.types import utcnow
from ..runtime import Runtime

log = logging.getLogger(__name__)


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
            for send_id in ids:
                outcomes.append(await deliver(self.rt, send_id, self.owner, now))

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
