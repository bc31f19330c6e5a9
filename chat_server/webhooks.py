"""The webhook queue's worker: sends due deliveries (signed, with a short timeout, each in its
own task), retries with backoff and jitter, and records every outcome. It shares nothing with
message handling but the database: a hung endpoint holds only its own deliveries."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from urllib.parse import urlsplit

import aiohttp

from .actions.webhook_deliveries import Claimed, claim_due, do_mark_delivered, do_mark_retry, do_prune_finished
from .actions.webhooks import WebhookDirectory, address_rule
from .queue_runner import QueueRunner
from .runtime import Runtime
from .webhook_addresses import PublicResolver

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0  # endpoints changed by another process are seen within this
PRUNE_SECONDS = 3600.0  # how often finished deliveries past their week are removed
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


class WebhookWorker(QueueRunner[Claimed]):
    what = "webhook queue"
    max_in_flight = 20

    def __init__(self, rt: Runtime, directory: WebhookDirectory) -> None:
        super().__init__(directory.queued)  # set once a transaction with deliveries committed
        self.rt = rt
        self.directory = directory
        self._http: aiohttp.ClientSession | None = None
        self._refreshed = self._pruned = time.monotonic()
        self._addresses = address_rule(rt.settings)

    async def open(self) -> None:
        # Names are resolved through the address rule on every connect; an address in the URL
        # itself skips resolving, so `send` checks that one.
        connector = aiohttp.TCPConnector(resolver=PublicResolver(self._addresses))
        self._http = aiohttp.ClientSession(connector=connector,
                                           timeout=aiohttp.ClientTimeout(total=self.rt.settings.webhook_timeout))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def tend(self) -> None:
        if time.monotonic() - self._refreshed >= REFRESH_SECONDS:
            await self.directory.refresh(self.rt.db)
            self._refreshed = time.monotonic()
        if time.monotonic() - self._pruned >= PRUNE_SECONDS:
            self._pruned = time.monotonic()
            await do_prune_finished(self.rt)

    async def claim(self, limit: int) -> list[Claimed]:
        return await claim_due(self.rt, limit)

    async def send(self, c: Claimed) -> None:
        assert self._http is not None
        host = (urlsplit(c.url).hostname or "").strip("[]")
        if self._addresses.refuses_literal(host):  # saved before the rule was tightened
            await do_mark_retry(self.rt, c, None, f"{host} is a private or reserved address; webhooks go to public addresses")
            return
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
