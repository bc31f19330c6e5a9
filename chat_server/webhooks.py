"""The webhook queue's worker: sends due deliveries (signed, with a short timeout, each in its
own task), retries with backoff and jitter, and records every outcome. It shares nothing with
message handling but the database: a hung endpoint holds only its own deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time

import aiohttp

from .actions.webhook_deliveries import Claimed, claim_due, do_mark_delivered, do_mark_retry, do_prune_finished
from .actions.webhooks import WebhookDirectory
from .runtime import Runtime

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
REFRESH_SECONDS = 5.0  # endpoints changed by another process are seen within this
PRUNE_SECONDS = 3600.0  # how often finished deliveries past their week are removed
MAX_IN_FLIGHT = 20
STOP_GRACE_SECONDS = 10.0
USER_AGENT = "chat-server-webhooks/1"


def signature(secret: str, timestamp: int, body: str) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", hex: what X-Webhook-Signature carries after "sha256="."""
    return hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


def headers(c: Claimed, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "X-Webhook-Id": str(c.id), "X-Webhook-Event": c.event_type, "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": f"sha256={signature(c.secret, timestamp, c.body)}",
    }


class WebhookWorker:
    def __init__(self, rt: Runtime, directory: WebhookDirectory) -> None:
        self.rt = rt
        self.directory = directory
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._http: aiohttp.ClientSession | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Let the requests in hand finish and be recorded (one cancelled halfway may have
        arrived unrecorded, and would be sent again once its lease ends); then stop."""
        if self._task:
            self._stopping = True
            self.directory.queued.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_SECONDS)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.rt.settings.webhook_timeout)
        in_flight: set[asyncio.Task[None]] = set()
        refreshed = pruned = time.monotonic()
        async with aiohttp.ClientSession(timeout=timeout) as self._http:
            while not self._stopping:
                self.directory.queued.clear()  # before looking: a commit meanwhile wakes the next wait
                try:
                    if time.monotonic() - refreshed >= REFRESH_SECONDS:
                        await self.directory.refresh(self.rt.db)
                        refreshed = time.monotonic()
                    if time.monotonic() - pruned >= PRUNE_SECONDS:
                        pruned = time.monotonic()
                        await do_prune_finished(self.rt)
                    room = MAX_IN_FLIGHT - len(in_flight)
                    claimed = await claim_due(self.rt, room) if room > 0 else []
                    for c in claimed:
                        task = asyncio.create_task(self.send(c))
                        in_flight.add(task)
                        task.add_done_callback(lambda t: self._done(in_flight, t))
                    if claimed:
                        continue
                except Exception:
                    log.exception("the webhook queue failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.directory.queued.wait(), POLL_SECONDS)
            try:
                if in_flight:
                    await asyncio.gather(*in_flight, return_exceptions=True)
            except asyncio.CancelledError:
                for task in in_flight:
                    task.cancel()
                raise

    def _done(self, in_flight: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
        in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recording a webhook delivery failed; it is sent again when its lease ends",
                      exc_info=task.exception())
        self.directory.queued.set()  # the endpoint's next delivery may be due now

    async def send(self, c: Claimed) -> None:
        assert self._http is not None
        try:
            async with self._http.post(c.url, data=c.body.encode(), headers=headers(c, int(time.time())),
                                       allow_redirects=False) as response:
                status = response.status
        except TimeoutError:
            await do_mark_retry(self.rt, c, None, f"no answer within {self.rt.settings.webhook_timeout:g} s")
        except aiohttp.ClientError as exc:
            await do_mark_retry(self.rt, c, None, f"{type(exc).__name__}: {exc}")
        else:
            if 200 <= status < 300:
                await do_mark_delivered(self.rt, c, status)
            else:
                await do_mark_retry(self.rt, c, status, f"the endpoint answered HTTP {status}")
