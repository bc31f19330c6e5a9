"""Telegram and VK unreachable, then failing, for what would be minutes, while customers keep
writing: once the service answers again every update sent meanwhile is stored once, in order.

Telegram keeps pending updates until a getUpdates names a later offset; Bots Long Poll keeps its
events by position (`ts`) and expires its key (`failed: 2`). The pollers' waits between tries
are capped at a fraction of a second here (60 s in production), so eight failures in a row (about
five minutes of doubling waits) pass in a moment."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.appserver import AppServer
from tests.channel_fakes import fake_vk_registry
from tests.channel_helpers import add_channel, admin, eventually, fixture, thread
from tests.fakes.telegram_api import TOKEN, FakeBotApi
from tests.fakes.vk_api import GROUP_ID, FakeVk
from tests.fakes.vk_api import TOKEN as VK_TOKEN

pytestmark = pytest.mark.anyio

FAILURES = 8  # 2 + 4 + … + 60 + 60 s: about five minutes of a real outage


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("integrations.base.POLL_RETRY_CAP", 0.05)


async def inbound_texts(http: httpx.AsyncClient) -> list[str]:
    convs = (await http.get("/conversations")).json()["items"]
    return [m["text"] for c in convs for m in await thread(http, c["id"]) if m["direction"] == "inbound"]


async def wait_for_texts(http: httpx.AsyncClient, expected: list[str], within: float = 20) -> None:
    async def arrived() -> list[str] | None:
        got = await inbound_texts(http)
        return got if len(got) >= len(expected) else None
    assert await eventually(arrived, within, f"{expected}") == expected


async def health(http: httpx.AsyncClient, instance_id: int) -> dict[str, Any]:
    r = await http.get(f"/channels/{instance_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def telegram_text(tg: FakeBotApi, n: int) -> dict[str, Any]:
    update = fixture("telegram", "text")
    update["update_id"] = tg.next_update_id()
    update["message"].update(message_id=200 + n, text=f"tg {n}")
    return update


async def test_telegram_updates_sent_during_a_long_outage_arrive_once_in_order(
    tmp_path: Path, db_url: str, tg: FakeBotApi,
) -> None:
    async with AppServer(tmp_path, db_url) as app, await admin(app) as http:
        instance = await add_channel(http, "telegram", {"token": TOKEN, "api_base": tg.base, "mode": "polling",
                                                        "poll_timeout": 1})
        tg.queue_update(telegram_text(tg, 0))
        await wait_for_texts(http, ["tg 0"])

        # Unreachable: the Bot API's port refuses connections; the customer goes on writing.
        await tg.go_away()
        for n in range(1, 4):
            tg.queue_update(telegram_text(tg, n))
        await eventually(lambda: _failing(http, instance["id"]), what="the channel shown as failing")
        # Reachable again, but failing (a gateway in trouble) for the rest of the outage.
        for _ in range(FAILURES):
            tg.fail_next("getUpdates", {"error_code": 502, "description": "Bad Gateway"})
        await tg.come_back()
        for n in range(4, 6):
            tg.queue_update(telegram_text(tg, n))
        await eventually(lambda: _drained(tg.failures.get("getUpdates")), what="every failure met")

        await wait_for_texts(http, [f"tg {n}" for n in range(6)])
        tg.queue_update(telegram_text(tg, 6))  # and it goes on as before
        await wait_for_texts(http, [f"tg {n}" for n in range(7)])
        await eventually(lambda: _state(http, instance["id"], "connected"), what="the channel shown as connected")


async def _failing(http: httpx.AsyncClient, instance_id: int) -> bool:
    return await _state(http, instance_id, "failing")


async def _state(http: httpx.AsyncClient, instance_id: int, state: str) -> bool:
    return bool((await health(http, instance_id))["state"] == state)


async def _drained(pending: list[Any] | None) -> bool:
    return not pending


def vk_event(n: int) -> dict[str, Any]:
    event = fixture("vk", "text", secret="")
    event["event_id"] = f"ev-{n}"
    event["object"]["message"].update(id=400 + n, conversation_message_id=400 + n, text=f"vk {n}")
    return event


async def test_vk_events_sent_during_a_long_outage_arrive_once_in_order(tmp_path: Path, db_url: str) -> None:
    vk = FakeVk()
    vk.users[55501] = ("Мария", "Иванова")
    async with AppServer(tmp_path, db_url, fake_vk_registry(vk)) as app, await admin(app) as http:
        instance = await add_channel(http, "vk", {"token": VK_TOKEN, "group_id": GROUP_ID, "mode": "longpoll",
                                                  "wait": 1, "screen_name": "acme_support"})
        vk.queue_event(vk_event(0))
        await wait_for_texts(http, ["vk 0"])

        # VK unreachable for a long while; the customer writes meanwhile. VK keeps the events.
        vk.down = True
        for n in range(1, 4):
            vk.queue_event(vk_event(n))
        await eventually(lambda: _at_least(lambda: vk.refused, FAILURES), what="eight failed tries")
        assert (await health(http, instance["id"]))["state"] == "failing"
        vk.expire_key()  # a new key after the outage: the poller fetches one and asks from where it stopped
        vk.down = False
        await wait_for_texts(http, [f"vk {n}" for n in range(4)])

        # The key expires under a live poller (`failed: 2`): it fetches a new one, keeps its place.
        vk.expire_key()
        for n in range(4, 6):
            vk.queue_event(vk_event(n))
        await wait_for_texts(http, [f"vk {n}" for n in range(6)])
        await eventually(lambda: _state(http, instance["id"], "connected"), what="the channel shown as connected")


@pytest.mark.parametrize("code", [1, 3])
async def test_vk_events_lost_by_vk_during_an_outage_are_read_from_the_history(
    tmp_path: Path, db_url: str, code: int,
) -> None:
    # VK answers `failed: 1` or `3` when it no longer has the events asked for: vk-api moves on
    # silently, and what the customer wrote meanwhile must come from the conversation's history.
    def written_now(n: int) -> dict[str, Any]:
        event = vk_event(n)
        event["object"]["message"]["date"] = int(time.time())
        return event
    vk = FakeVk()
    vk.users[55501] = ("Мария", "Иванова")
    async with AppServer(tmp_path, db_url, fake_vk_registry(vk)) as app, await admin(app) as http:
        await add_channel(http, "vk", {"token": VK_TOKEN, "group_id": GROUP_ID, "mode": "longpoll", "wait": 1,
                                       "screen_name": "acme_support"})
        vk.queue_event(written_now(0))
        await wait_for_texts(http, ["vk 0"])
        vk.down = True  # first unreachable, so that no poll under way takes what comes next
        await eventually(lambda: _at_least(lambda: vk.refused, 2), what="two failed tries")
        for n in range(1, 4):
            vk.queue_event(written_now(n))
        vk.lose_history(code)
        vk.down = False
        await wait_for_texts(http, [f"vk {n}" for n in range(4)])
        assert any(name == "messages.getHistory" for name, _ in vk.calls)
        vk.queue_event(written_now(4))  # and it goes on from VK's new position
        await wait_for_texts(http, [f"vk {n}" for n in range(5)])


async def _at_least(count: Any, n: int) -> bool:
    return bool(count() >= n)
