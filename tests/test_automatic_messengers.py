"""Automatic messages to Telegram and VK leave through the outbound queue to the local wire
servers; a contact who blocked us there is unreachable; the best available channel is the
widget when they are online, then a linked messenger, then email."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from chat_server.actions.contacts import find_or_create_contact
from chat_server.actions.errors import ActionError
from chat_server.actions.proactive import do_send_proactive
from chat_server.models import ContactIdentity, IdentityKind, Unsubscribe
from chat_server.reads.reach import Reach, best_channel, reach_of
from chat_server.runtime import Runtime
from tests.appserver import AppServer
from tests.channel_fakes import fake_vk_registry
from tests.channel_helpers import add_channel, admin, conversations, eventually, fixture, thread
from tests.fakes.telegram_api import TOKEN as TG_TOKEN
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.vk_api import GROUP_ID, FakeVk
from tests.fakes.vk_api import TOKEN as VK_TOKEN
from tests.inprocess import RecordingBus

pytestmark = pytest.mark.anyio

TG_SECRET = "s3cret-token-for-webhook-calls"
VK_SECRET = "vk-callback-secret"


@pytest.fixture
async def app(tmp_path: Path, db_url: str, vk: FakeVk) -> AsyncIterator[AppServer]:
    registry = fake_vk_registry(vk)
    async with AppServer(tmp_path, db_url, registry) as server:
        yield server


async def webhook(app: AppServer, instance: dict[str, Any], body: dict[str, Any], headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=app.http, timeout=30) as client:
        r = await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=body, headers=headers)
        assert r.status_code == 200, r.text


async def the_contact(http: httpx.AsyncClient) -> tuple[int, int]:
    async def one() -> list[dict[str, Any]] | None:
        found = await conversations(http)
        return found if len(found) == 1 else None
    convs = await eventually(one, what="the contact's conversation")  # VK's are stored after answering
    return convs[0]["contact"]["id"], convs[0]["id"]


async def blocked_and_refused(rt: Runtime, contact_id: int, channel: Any) -> None:
    async def refused() -> bool:
        try:
            async with rt.db.read() as s:
                if channel not in (await reach_of(s, contact_id)).blocked:
                    return False
            await do_send_proactive(rt, contact_id, "Still there?", channel=channel)
        except ActionError as exc:
            return exc.code == "unreachable" and "blocked" in exc.message
        return False
    await eventually(refused, what=f"{channel} blocked")


async def test_automatic_messages_reach_telegram_until_the_bot_is_blocked(app: AppServer) -> None:
    rt: Runtime = app.app.state.sockets.rt
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    async with FakeBotApi() as tg, await admin(app) as http:
        instance = await add_channel(http, "telegram", {
            "token": TG_TOKEN, "bot_username": "support_test_bot", "api_base": tg.base, "mode": "webhook",
            "webhook_secret": TG_SECRET, "public_url": app.http})
        await webhook(app, instance, fixture("telegram", "text"), headers)
        contact_id, conv_id = await the_contact(http)
        stored = await do_send_proactive(rt, contact_id, "Скидка 20% до пятницы", channel="telegram",
                                         author_name="Acme bot", client_msg_id="trigger-3:tg")
        assert stored.message.delivery_state == "pending"
        calls = await eventually(lambda: _some(tg.sent("sendMessage")), what="sendMessage")
        assert [(c.params["chat_id"], c.params["text"]) for c in calls] == [("111222333", "Скидка 20% до пятницы")]

        async def sent() -> bool:
            items = await thread(http, conv_id)
            return any(m["id"] == stored.message.id and m["delivery_state"] == "sent" and m["kind"] == "automatic"
                       for m in items)
        await eventually(sent, what="marked sent")
        again = await do_send_proactive(rt, contact_id, "Скидка 20% до пятницы", channel="telegram",
                                        client_msg_id="trigger-3:tg")
        assert again.duplicate
        await webhook(app, instance, fixture("telegram", "my_chat_member_kicked"), headers)
        await blocked_and_refused(rt, contact_id, "telegram")
        assert len(tg.sent("sendMessage")) == 1


async def test_automatic_messages_reach_vk_until_messages_are_denied(app: AppServer, vk: FakeVk) -> None:
    rt: Runtime = app.app.state.sockets.rt
    async with await admin(app) as http:
        instance = await add_channel(http, "vk", {
            "token": VK_TOKEN, "group_id": GROUP_ID, "mode": "callback", "confirmation": "3f2a9c1b",
            "secret": VK_SECRET, "screen_name": "acme_support"})
        await webhook(app, instance, fixture("vk", "text", secret=VK_SECRET), {})
        contact_id, _ = await the_contact(http)
        stored = await do_send_proactive(rt, contact_id, "Новая коллекция уже в магазине", channel="vk")
        await eventually(lambda: _some(vk.sent), what="messages.send")
        assert [(s.peer_id, s.text, s.random_id) for s in vk.sent] == [(55501, "Новая коллекция уже в магазине",
                                                                         stored.message.id)]
        await webhook(app, instance, fixture("vk", "message_deny", secret=VK_SECRET), {})
        await blocked_and_refused(rt, contact_id, "vk")
        with pytest.raises(ActionError) as refused:  # never linked to Telegram
            await do_send_proactive(rt, contact_id, "Hi", channel="telegram")
        assert refused.value.code == "unreachable"
        assert len(vk.sent) == 1


async def _some(items: list[Any]) -> list[Any] | None:
    return list(items) or None


def test_best_channel_prefers_the_open_widget_then_a_messenger_then_email() -> None:
    everything = Reach(online_widget=True, telegram=True, vk=True, email="a@example.org", unsubscribed=frozenset())
    assert best_channel(everything) == "widget"
    offline = Reach(online_widget=False, telegram=True, vk=True, email="a@example.org", unsubscribed=frozenset())
    assert best_channel(offline) == "telegram"
    assert best_channel(Reach(False, False, True, "a@example.org", frozenset())) == "vk"
    assert best_channel(Reach(False, False, False, "a@example.org", frozenset())) == "email"
    assert best_channel(Reach(False, False, False, "a@example.org", frozenset({"email"}))) is None
    assert best_channel(Reach(False, False, False, None, frozenset())) is None


async def test_reach_is_read_from_identities_blocks_and_unsubscriptions(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    async with runtime.db.write() as s:
        contact, _ = await find_or_create_contact(s, IdentityKind.visitor, "v-reach", "first visit")
        assert contact.id is not None
        cid = contact.id
    async with runtime.db.read() as s:
        assert await reach_of(s, cid) == Reach(False, False, False, None, frozenset())
        assert best_channel(await reach_of(s, cid, online_widget=True)) == "widget"
        assert best_channel(await reach_of(s, cid)) is None
    async with runtime.db.write() as s:
        s.add(ContactIdentity(kind=IdentityKind.email, value="reach@example.org", contact_id=cid))
        s.add(ContactIdentity(kind=IdentityKind.telegram, value="42", contact_id=cid, state="blocked"))
        s.add(ContactIdentity(kind=IdentityKind.vk, value="43", contact_id=cid))
    async with runtime.db.read() as s:
        found = await reach_of(s, cid)
    assert (found.telegram, found.vk, found.email, found.blocked) == (False, True, "reach@example.org", {"telegram"})
    assert best_channel(found) == "vk"
    async with runtime.db.write() as s:
        vk_identity = await s.get(ContactIdentity, (await _identity_id(runtime, cid, "vk")))
        assert vk_identity is not None
        vk_identity.state = "blocked"
        s.add(vk_identity)
        s.add(Unsubscribe(contact_id=cid, channel="email"))
    async with runtime.db.read() as s:
        found = await reach_of(s, cid)
    assert found.unsubscribed == {"email"} and best_channel(found) is None
    for channel in ("telegram", "vk", "email"):
        with pytest.raises(ActionError) as refused:
            await do_send_proactive(runtime, cid, "Hello", channel=channel)  # type: ignore[arg-type]
        assert refused.value.code == "unreachable"


async def _identity_id(rt: Runtime, contact_id: int, kind: str) -> int:
    async with rt.db.read() as s:
        found = (await s.exec(select(ContactIdentity.id).where(
            ContactIdentity.contact_id == contact_id, ContactIdentity.kind == kind))).first()
    assert found is not None
    return found
