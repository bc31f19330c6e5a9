"""A real HTTP server on loopback standing in for a CRM that receives our webhooks: it records
every request and answers as the test tells it (a list of statuses, a delay, or hanging until
released)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiohttp import web

from tests.services import free_port


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """The receiver's check, as docs/webhooks.md shows it."""
    timestamp = headers.get("X-Webhook-Timestamp", "")
    signature = headers.get("X-Webhook-Signature", "").removeprefix("sha256=")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int | None = None  # what we answered; None while it hangs

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def delivery_id(self) -> str:
        return self.headers["X-Webhook-Id"]


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)  # answered in turn, then 200
    delay: float = 0.0
    hang: bool = False
    requests: list[Received] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.released = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, request: web.Request) -> web.Response:
        got = Received(dict(request.headers), await request.read())
        self.requests.append(got)
        if self.hang:
            await self.released.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        got.status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=got.status, text="ok")

    def accepted(self, event_type: str | None = None) -> list[Received]:
        return [r for r in self.requests if r.status is not None and 200 <= r.status < 300
                and (event_type is None or r.event["type"] == event_type)]

    async def until(self, condition: Callable[[], bool], seconds: float = 20.0) -> None:
        with anyio.fail_after(seconds):
            while not condition():  # noqa: ASYNC110 - the state is the list the handler appends to
                await asyncio.sleep(0.01)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hooks", self.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.released.set()
        assert self._runner is not None
        await self._runner.cleanup()
