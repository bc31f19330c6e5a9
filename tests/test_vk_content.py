"""Nothing a VK customer sends is lost, and the whole conversation is in the thread: shared
links, posts, products and videos keep what they carry; forwards and replies keep their
context; a community admin's answer in VK shows up as ours; a person who denies messages is
recorded on the card before anyone replies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.appserver import AppServer
from tests.channel_fakes import fake_vk_registry
from tests.channel_helpers import add_channel, admin, eventually, fixture, thread
from tests.fakes.telegram_api import TOKEN as TG_TOKEN
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.vk_api import GROUP_ID, TOKEN, FakeVk

pytestmark = pytest.mark.anyio

SECRET = "vk-callback-secret"


@pytest.fixture
async def app(tmp_path: Path, db_url: str, vk: FakeVk) -> AsyncIterator[AppServer]:
    registry = fake_vk_registry(vk)
    async with AppServer(tmp_path, db_url, registry) as server:
        yield server


@pytest.fixture
async def community(app: AppServer) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    async with await admin(app) as http:
        yield http, await add_channel(http, "vk", {
            "token": TOKEN, "group_id": GROUP_ID, "mode": "callback", "confirmation": "3f2a9c1b", "secret": SECRET})


async def callback(app: AppServer, instance: dict[str, Any], event: dict[str, Any] | str) -> None:
    body = fixture("vk", event, secret=SECRET) if isinstance(event, str) else event
    async with httpx.AsyncClient(base_url=app.http, timeout=30) as http:
        r = await http.post(f"/api/v1/channels/{instance['id']}/webhook", json=body)
        assert r.text == "ok", r.text


async def lines(http: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        convs = (await http.get("/conversations")).json()["items"]
        if not convs:
            return None
        items = await thread(http, convs[0]["id"])
        return items if len(items) >= count else None
    return await eventually(probe, what=f"{count} line(s) in the thread")


async def identities(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    conv = (await http.get("/conversations")).json()["items"][0]
    card = (await http.get(f"/contacts/{conv['contact']['id']}")).json()
    return {i["kind"]: i for i in card["identities"]}


# --- 6. shared things keep their link, title and text ------------------------------------------


async def test_link_post_product_and_video_keep_what_they_carry(community: Any, app: AppServer) -> None:
    http, instance = community
    await callback(app, instance, "shared")
    [m] = await lines(http, 1)
    assert m["text"].split("\n") == [
        "смотрите",
        "[link: Кроссовки Nova https://shop.example/item/4521]",
        f"[wall post https://vk.com/wall-{GROUP_ID}_88: Скидка 20% на всё до пятницы]",
        f"[product: Кроссовки Nova, 4 990 ₽ https://vk.com/market-{GROUP_ID}?w=product-{GROUP_ID}_4521]",
        "[video: Как они скрипят https://vk.com/video55501_456239017]",
    ]


async def test_forwards_and_replies_keep_their_context(community: Any, app: AppServer) -> None:
    http, instance = community
    await callback(app, instance, "forward_reply")
    [m] = await lines(http, 1)
    assert m["text"] == ("[forwarded: “Заказ 4521 отменён”]\n"
                         "[in reply to: “Пришлите, пожалуйста, номер заказа”]\n"
                         "вот что мне ответили")


# --- 8. an admin's answer written in VK is part of the thread --------------------------------


async def test_an_admin_answer_in_vk_appears_as_ours_and_our_own_echo_does_not(community: Any, app: AppServer,
                                                                              vk: FakeVk) -> None:
    http, instance = community
    await callback(app, instance, "text")
    [first] = await lines(http, 1)
    conv_id = (await http.get("/conversations")).json()["items"][0]["id"]
    r = await http.post(f"/conversations/{conv_id}/messages", json={"text": "Заказ в пути"})
    ours = r.json()["message"]

    async def sent() -> Any:
        return [m for m in await thread(http, conv_id) if m["id"] == ours["id"] and m["delivery_state"] == "sent"]
    await eventually(sent, what="our reply sent")
    [delivered] = vk.sent
    # VK tells the callback about every message the community sends, ours included.
    echo = fixture("vk", "message_reply", secret=SECRET)
    echo["object"].update(id=delivered.message_id, random_id=delivered.random_id, text=delivered.text)
    del echo["object"]["admin_author_id"]
    await callback(app, instance, echo)
    await callback(app, instance, "message_reply")  # an admin answering in VK itself
    items = await lines(http, 3)
    assert [(m["direction"], m["text"], m["author"]["name"]) for m in items] == [
        ("inbound", first["text"], "Мария Иванова"),
        ("outbound", "Заказ в пути", ours["author"]["name"]),
        ("outbound", "Добрый день! Это администратор, заказ уже у курьера.", "VK community"),
    ]
    assert items[2]["delivery_state"] == "sent" and len(vk.sent) == 1  # shown, never sent again
    await callback(app, instance, "message_reply")  # a retried callback: stored once
    await callback(app, instance, "text")
    assert len(await thread(http, conv_id)) == 3


# --- 4. blocks and unsubscribes are recorded before anyone replies -----------------------------


async def test_a_person_who_denies_messages_is_recorded_on_the_card(community: Any, app: AppServer) -> None:
    http, instance = community
    await callback(app, instance, "text")
    await lines(http, 1)
    await callback(app, instance, "message_deny")
    items = await lines(http, 2)
    assert items[1]["kind"] == "system" and "blocked us on VK" in items[1]["text"]
    assert (await identities(http))["vk"]["state"] == "blocked"
    conv = (await http.get("/conversations")).json()["items"][0]
    card = (await http.get(f"/contacts/{conv['contact']['id']}")).json()
    assert "channel_blocked" in [e["name"] for e in card["events"]]
    await callback(app, instance, "message_allow")
    items = await lines(http, 3)
    assert "reached on VK again" in items[2]["text"]
    assert (await identities(http))["vk"]["state"] is None


async def test_a_telegram_user_who_blocks_the_bot_is_recorded(app: AppServer) -> None:
    async with FakeBotApi() as tg, await admin(app) as http:
        instance = await add_channel(http, "telegram", {
            "token": TG_TOKEN, "bot_username": "support_test_bot", "api_base": tg.base, "mode": "webhook",
            "webhook_secret": "s3cret-token-for-webhook-calls", "public_url": app.http})
        assert "my_chat_member" in tg.sent("setWebhook")[0].params["allowed_updates"]
        async with httpx.AsyncClient(base_url=app.http, timeout=30) as client:
            for name in ("text", "my_chat_member_kicked"):
                r = await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=fixture("telegram", name),
                                      headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token-for-webhook-calls"})
                assert r.status_code == 200
        items = await lines(http, 2)
        assert "blocked us on Telegram" in items[1]["text"]
        assert (await identities(http))["telegram"]["state"] == "blocked"
