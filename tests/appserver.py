"""The app in the test process, served by uvicorn on a loopback port, so a test can hand it
channel adapters pointed at local fake services (and reach into their sessions)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import uvicorn

from chat_server.app import create_app
from chat_server.settings import Settings
from integrations.base import AdapterRegistry
from tests.harness import ADMIN_EMAIL, ADMIN_PASSWORD, METRICS_TOKEN, settle_admin
from tests.services import free_port


class AppServer:
    def __init__(self, tmp: Path, database_url: str, adapters: AdapterRegistry | None = None, **settings: Any) -> None:
        self.port = free_port()
        # The local fakes stand in for the services' file hosts: named exactly, so their
        # loopback address is allowed (nothing else on loopback is).
        settings.setdefault("channel_file_hosts", "127.0.0.1,files.vk.ru")
        self.settings = Settings(**{
            "database_url": database_url, "data_dir": tmp / "data", "secret_key": "test-secret-key",
            "initial_admin_email": ADMIN_EMAIL, "initial_admin_password": ADMIN_PASSWORD,
            "ip_connects_per_minute": 0, "visitor_messages_per_minute": 0, "visitor_events_per_minute": 0,
            "metrics_token": METRICS_TOKEN, "log_json": False, **settings,
        })
        self.app = create_app(self.settings, adapters)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> AppServer:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, ws="chat_server.realtime.wire:ChatWebSocketProtocol",
                                ws_per_message_deflate=self.settings.ws_compression,
                                log_config=None, access_log=False, lifespan="on",
                                # A failed test can leave a client that never reads: stop anyway.
                                timeout_graceful_shutdown=10)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(300):
            if self._server.started:
                await asyncio.to_thread(settle_admin, self.http)
                return self
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.05)
        raise RuntimeError("the app did not start")

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task
