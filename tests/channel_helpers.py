"""Shared steps of the channel tests: an admin session, channel instances, waiting for news."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.harness import api, login

FIXTURES = Path(__file__).resolve().parent / "fixtures"
T = TypeVar("T")


def fixture(channel: str, name: str, **replace: str) -> dict[str, Any]:
    text = (FIXTURES / channel / f"{name}.json").read_text()
    for key, value in replace.items():
        text = text.replace(f"__{key.upper()}__", value)
    return json.loads(text)  # type: ignore[no-any-return]


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float = 10.0, what: str = "") -> T:
    """Poll until `probe` returns something truthy (news crosses processes and queues)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or probe}")
        await asyncio.sleep(0.05)


async def admin(server: Any) -> httpx.AsyncClient:
    return api(server, await login(server))


async def add_channel(http: httpx.AsyncClient, channel: str, config: dict[str, Any], name: str = "",
                      check: bool = False) -> dict[str, Any]:
    """Saved unchecked unless asked: most tests are about what happens after an admin added it
    (tests/test_channel_checks.py is about the check)."""
    r = await http.post("/channels", json={"channel": channel, "name": name or channel, "config": config,
                                           "check": check})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def thread(http: httpx.AsyncClient, conversation_id: int) -> list[dict[str, Any]]:
    r = await http.get(f"/conversations/{conversation_id}/messages", params={"limit": "200"})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def conversations(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await http.get("/conversations", params={"limit": "200"})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def only_thread(http: httpx.AsyncClient) -> tuple[int, list[dict[str, Any]]]:
    convs = await conversations(http)
    assert len(convs) == 1, convs
    return convs[0]["id"], await thread(http, convs[0]["id"])
