"""Replies on a bad day: the local Bot API and VK answer 5xx, 429, unknown error codes or
nothing at all, and every reply still leaves once, whole and in order, or fails visibly."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tests.appserver import AppServer
from tests.channel_fakes import fake_vk_registry
from tests.channel_helpers import add_channel, admin, eventually, fixture, only_thread, thread
from tests.fakes.telegram_api import TOKEN, FakeBotApi
from tests.fakes.vk_api import GROUP_ID, FakeVk
from tests.fakes.vk_api import TOKEN as VK_TOKEN
from tests.mailservers import SmtpSink
from tests.services import free_port
from tests.test_email import first_mail, mailbox_config, smtp_in, the_thread

pytestmark = pytest.mark.anyio

SECRET = "s3cret-token-for-webhook-calls"
VK_SECRET = "vk-callback-secret"
# Quick retries and a short send timeout, so bad days play out within a test.
FAST = {"outbound_retry_seconds": 0.05, "outbound_max_attempts": 3, "outbound_send_timeout": 1.0}
SERVER_ERROR = {"error_code": 502, "description": "Bad Gateway"}
TOO_MANY = {"error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}


@pytest.fixture
async def app(tmp_path: Path, db_url: str, vk: FakeVk) -> AsyncIterator[AppServer]:
    registry = fake_vk_registry(vk)
    async with AppServer(tmp_path, db_url, registry, **FAST) as server:
        yield server


async def telegram_thread(app: AppServer, tg: FakeBotApi) -> tuple[httpx.AsyncClient, int]:
    http = await admin(app)
    instance = await add_channel(http, "telegram", {
        "token": TOKEN, "bot_username": "support_test_bot", "api_base": tg.base, "mode": "webhook",
        "webhook_secret": SECRET, "public_url": app.http})
    async with httpx.AsyncClient(base_url=app.http, timeout=30) as client:
        r = await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=fixture("telegram", "text"),
                              headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert r.status_code == 200
    conv_id, _ = await only_thread(http)
    return http, conv_id


async def vk_thread(app: AppServer) -> tuple[httpx.AsyncClient, int]:
    http = await admin(app)
    instance = await add_channel(http, "vk", {
        "token": VK_TOKEN, "group_id": GROUP_ID, "mode": "callback", "confirmation": "3f2a9c1b",
        "secret": VK_SECRET})
    async with httpx.AsyncClient(base_url=app.http, timeout=30) as client:
        r = await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=fixture("vk", "text", secret=VK_SECRET))
        assert r.text == "ok"

    async def stored() -> int | None:
        items = (await http.get("/conversations")).json()["items"]
        return items[0]["id"] if items else None
    return http, await eventually(stored, what="the VK message stored")


async def reply(http: httpx.AsyncClient, conv_id: int, text: str, **extra: Any) -> int:
    r = await http.post(f"/conversations/{conv_id}/messages", json={"text": text, **extra})
    assert r.status_code == 201, r.text
    return r.json()["message"]["id"]  # type: ignore[no-any-return]


async def settled(http: httpx.AsyncClient, conv_id: int, *ids: int) -> dict[int, dict[str, Any]]:
    """Wait until each of the replies is sent or failed; their rows by id."""
    async def probe() -> dict[int, dict[str, Any]] | None:
        rows = {m["id"]: m for m in await thread(http, conv_id) if m["id"] in ids}
        done = all(rows[i]["delivery_state"] in ("sent", "failed") for i in ids)
        return rows if done else None
    return await eventually(probe, within=90, what=f"replies {ids} settled")


# --- 1. transient failures are counted, retried, and end visibly -------------------------------


async def test_a_telegram_server_error_is_retried_and_the_reply_sent_once(app: AppServer, tg: FakeBotApi) -> None:
    http, conv_id = await telegram_thread(app, tg)
    tg.fail_next("sendMessage", SERVER_ERROR)
    message_id = await reply(http, conv_id, "Your order ships tomorrow")
    rows = await settled(http, conv_id, message_id)
    assert rows[message_id]["delivery_state"] == "sent"
    assert [c.method for c in tg.calls if c.method.startswith("send")] == ["sendMessage:refused", "sendMessage"]
    await http.aclose()


async def test_server_errors_until_the_limit_end_failed_with_the_reason(app: AppServer, tg: FakeBotApi) -> None:
    http, conv_id = await telegram_thread(app, tg)
    for _ in range(3):
        tg.fail_next("sendMessage", SERVER_ERROR)
    message_id = await reply(http, conv_id, "Hello?")
    row = (await settled(http, conv_id, message_id))[message_id]
    assert row["delivery_state"] == "failed"
    assert "gave up after 3 attempts" in row["delivery_error"] and "Bad Gateway" in row["delivery_error"]
    assert tg.sent() == []
    await http.aclose()


async def test_a_vk_error_code_we_do_not_know_is_retried(app: AppServer, vk: FakeVk) -> None:
    http, conv_id = await vk_thread(app)
    vk.fail_next("messages.send", 10, "Internal server error")
    message_id = await reply(http, conv_id, "Заказ в пути")
    rows = await settled(http, conv_id, message_id)
    assert rows[message_id]["delivery_state"] == "sent"
    assert [s.text for s in vk.sent] == ["Заказ в пути"]
    await http.aclose()


async def test_an_smtp_deferral_is_retried_and_counted_until_the_limit(app: AppServer, tmp_path: Path) -> None:
    ca = trustme.CA()
    with SmtpSink(ca) as sink:
        port = free_port()
        http = await admin(app)
        await add_channel(http, "email", mailbox_config(sink, ca, tmp_path, listen_port=port))

        async def delivered() -> bool:
            try:
                await smtp_in(port, first_mail())
            except ConnectionRefusedError:  # the listener starts with the instance's loop
                return False
            return True
        await eventually(delivered, what="the mailbox's SMTP listener")
        conv_id, _ = await the_thread(http, 1)
        sink.defer = 1
        once = await reply(http, conv_id, "Your order ships tomorrow.")
        assert (await settled(http, conv_id, once))[once]["delivery_state"] == "sent"
        assert len(sink.received) == 1
        sink.defer = 3
        never = await reply(http, conv_id, "Hello?")
        row = (await settled(http, conv_id, never))[never]
        assert row["delivery_state"] == "failed" and "gave up after 3 attempts" in row["delivery_error"]
        assert "451" in row["delivery_error"] and len(sink.received) == 1
        await http.aclose()


# --- 2. one conversation's replies leave in the order they were written ------------------------


async def test_a_reply_waiting_for_a_retry_is_not_overtaken(app: AppServer, tg: FakeBotApi) -> None:
    http, conv_id = await telegram_thread(app, tg)
    tg.fail_next("sendMessage", TOO_MANY)
    first = await reply(http, conv_id, "first")
    await eventually(lambda: _async([c for c in tg.calls if c.method == "sendMessage:refused"]), what="429")
    second = await reply(http, conv_id, "second")
    rows = await settled(http, conv_id, first, second)
    assert {rows[i]["delivery_state"] for i in (first, second)} == {"sent"}
    assert [c.params["text"] for c in tg.sent()] == ["first", "second"]
    await http.aclose()


async def test_vk_flood_control_does_not_let_the_next_reply_overtake(app: AppServer, vk: FakeVk) -> None:
    http, conv_id = await vk_thread(app)
    vk.fail_next("messages.send", 9, "Flood control")
    first = await reply(http, conv_id, "первое")
    await eventually(lambda: _async([c for c in vk.calls if c[0] == "messages.send"]), what="flood control")
    second = await reply(http, conv_id, "второе")
    await settled(http, conv_id, first, second)
    assert [s.text for s in vk.sent] == ["первое", "второе"]
    await http.aclose()


# --- 3. a reply in parts leaves whole, each part once -----------------------------------------


async def test_a_retried_second_part_does_not_resend_the_first(app: AppServer, tg: FakeBotApi) -> None:
    http, conv_id = await telegram_thread(app, tg)
    tg.fail_after("sendMessage", 1, SERVER_ERROR)
    text = "word " * 1000  # 5,000 characters: two parts
    message_id = await reply(http, conv_id, text)
    row = (await settled(http, conv_id, message_id))[message_id]
    assert row["delivery_state"] == "sent"
    parts = [c.params["text"] for c in tg.sent()]
    assert len(parts) == 2 and "".join(parts) == text
    assert all(len(p) <= 4096 for p in parts)
    await http.aclose()


async def test_text_then_files_retried_on_the_file_sends_the_text_once(app: AppServer, tg: FakeBotApi) -> None:
    http, conv_id = await telegram_thread(app, tg)
    r = await http.post("/attachments", params={"name": "prices.pdf"}, content=b"%PDF-1.4 price list",
                        headers={"content-type": "application/pdf"})
    assert r.status_code == 201, r.text
    tg.fail_next("sendDocument", SERVER_ERROR)
    text = "Our prices, in detail. " * 60  # too long for a caption: the text goes first
    message_id = await reply(http, conv_id, text, attachment_ids=[r.json()["id"]])
    row = (await settled(http, conv_id, message_id))[message_id]
    assert row["delivery_state"] == "sent"
    assert [c.params["text"] for c in tg.sent()] == [text]
    assert [c.files["document"] for c in tg.sent("sendDocument")] == [b"%PDF-1.4 price list"]
    await http.aclose()


async def test_a_long_vk_reply_is_split_not_cut(app: AppServer, vk: FakeVk) -> None:
    http, conv_id = await vk_thread(app)
    vk.fail_after("messages.send", 1, 10, "Internal server error")
    text = "слово " * 1000  # 6,000 characters
    message_id = await reply(http, conv_id, text)
    row = (await settled(http, conv_id, message_id))[message_id]
    assert row["delivery_state"] == "sent"
    assert "".join(s.text for s in vk.sent) == text and len(vk.sent) == 2
    assert all(len(s.text) <= 4096 for s in vk.sent)
    await http.aclose()


# --- soak: a random bad day ------------------------------------------------------------------


async def test_soak_every_reply_ends_sent_once_in_order_or_failed(tmp_path: Path, db_url: str, tg: FakeBotApi) -> None:
    rng = random.Random(17)

    def bad_day(method: str) -> dict[str, Any] | str | None:
        roll = rng.random()
        if roll < 0.15:
            return TOO_MANY | {"parameters": {"retry_after": 0}}
        if roll < 0.30:
            return SERVER_ERROR
        if roll < 0.34:
            return "hang"
        return None

    tg.hang_seconds = 4.0
    settings = {**FAST, "outbound_max_attempts": 4, "outbound_send_timeout": 3.0}
    async with AppServer(tmp_path, db_url, **settings) as app:
        http = await admin(app)
        instance = await add_channel(http, "telegram", {
            "token": TOKEN, "bot_username": "support_test_bot", "api_base": tg.base, "mode": "webhook",
            "webhook_secret": SECRET, "public_url": app.http})
        conversations: dict[int, int] = {}
        async with httpx.AsyncClient(base_url=app.http, timeout=30) as client:
            for person in range(4):
                update = fixture("telegram", "text")
                update["update_id"] += person
                update["message"]["message_id"] += person
                update["message"]["from"]["id"] = update["message"]["chat"]["id"] = 111222333 + person
                r = await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=update,
                                      headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
                assert r.status_code == 200
        for conv in (await http.get("/conversations")).json()["items"]:
            conversations[conv["id"]] = 0
        assert len(conversations) == 4
        tg.chaos = bad_day
        written: dict[int, list[tuple[int, str]]] = {c: [] for c in conversations}
        for n in range(10):
            for conv_id in conversations:
                text = f"reply {n} to {conv_id}"
                written[conv_id].append((await reply(http, conv_id, text), text))
        rows: dict[int, dict[str, Any]] = {}
        for conv_id, replies in written.items():
            rows |= await settled(http, conv_id, *[i for i, _ in replies])
        tg.chaos = None
        sent_texts = [c.params["text"] for c in tg.sent()]
        for conv_id, replies in written.items():
            expected = [t for i, t in replies if rows[i]["delivery_state"] == "sent"]
            chat = [t for t in sent_texts if t.endswith(f" to {conv_id}")]
            states = [(t, rows[i]["delivery_state"], rows[i]["delivery_error"]) for i, t in replies]
            assert chat == expected, states  # each sent reply exactly once, in the order written
            for i, _ in replies:
                if rows[i]["delivery_state"] == "failed":
                    assert rows[i]["delivery_error"]
        assert any(r["delivery_state"] == "sent" for r in rows.values())
        await http.aclose()


async def _async(value: Any) -> Any:
    return value
