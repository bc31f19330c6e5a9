"""Telegram through aiogram against a local Bot API server: webhook and long polling in,
sendMessage / sendDocument out, every message type we handle, duplicates and 429s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.base import OutboundAttachment, OutboundMessage
from integrations.telegram import TelegramAdapter, TelegramConfig
from tests.appserver import AppServer
from tests.channel_helpers import add_channel, admin, eventually, fixture, only_thread, thread
from tests.fakes.telegram_api import TOKEN, FakeBotApi
from tests.harness import login, operator

pytestmark = pytest.mark.anyio

SECRET = "s3cret-token-for-webhook-calls"


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[AppServer]:
    async with AppServer(tmp_path, db_url) as server:
        yield server


def tg_config(tg: FakeBotApi, **extra: Any) -> dict[str, Any]:
    return {"token": TOKEN, "bot_username": "support_test_bot", "api_base": tg.base, "mode": "webhook",
            "webhook_secret": SECRET, **extra}


@pytest.fixture
async def bot(app: AppServer, tg: FakeBotApi) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    async with await admin(app) as http:
        instance = await add_channel(http, "telegram", tg_config(tg, public_url=app.http))
        yield http, instance


async def post_update(app: AppServer, instance: dict[str, Any], update: dict[str, Any],
                      secret: str | None = SECRET) -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    async with httpx.AsyncClient(base_url=app.http) as http:
        return await http.post(f"/api/v1/channels/{instance['id']}/webhook", json=update, headers=headers)


async def test_creating_a_webhook_bot_registers_the_webhook_with_its_secret(bot: Any, tg: FakeBotApi, app: AppServer) -> None:
    _, instance = bot
    calls = tg.sent("setWebhook")
    assert len(calls) == 1
    assert calls[0].params["url"] == f"{app.http}/api/v1/channels/{instance['id']}/webhook"
    assert calls[0].params["secret_token"] == SECRET
    # Secrets are stored but never shown in full.
    assert instance["config"]["token"].startswith("••••") and TOKEN not in str(instance)
    assert SECRET not in str(instance)


async def test_webhook_without_the_secret_header_is_refused_and_stores_nothing(bot: Any, app: AppServer) -> None:
    http, instance = bot
    assert (await post_update(app, instance, fixture("telegram", "text"), secret=None)).status_code == 401
    assert (await post_update(app, instance, fixture("telegram", "text"), secret="wrong-secret-wrong")).status_code == 401
    assert (await http.get("/conversations")).json()["items"] == []


async def test_text_message_lands_on_a_new_contact_with_its_name(bot: Any, app: AppServer) -> None:
    http, instance = bot
    r = await post_update(app, instance, fixture("telegram", "text"))
    assert r.status_code == 200
    conv_id, messages = await only_thread(http)
    assert [(m["channel"], m["direction"], m["text"]) for m in messages] == [
        ("telegram", "inbound", "Hello, I have a question about my order")]
    assert messages[0]["author"]["name"] == "Ivan Petrov"
    conv = (await http.get(f"/conversations/{conv_id}")).json()
    card = (await http.get(f"/contacts/{conv['contact']['id']}")).json()
    assert card["contact"]["name"] == "Ivan Petrov"
    assert [(i["kind"], i["value"]) for i in card["identities"]] == [("telegram", "111222333")]


async def test_the_same_update_delivered_twice_is_stored_once(bot: Any, app: AppServer) -> None:
    http, instance = bot
    update = fixture("telegram", "text")
    for _ in range(3):
        assert (await post_update(app, instance, update)).status_code == 200
    _, messages = await only_thread(http)
    assert len(messages) == 1


async def test_updates_out_of_order_and_repeated_are_each_stored_once(bot: Any, app: AppServer) -> None:
    # A webhook retried after a timeout arrives after later updates: none may be taken for an
    # old duplicate (as a high-water mark on update_id would), none stored twice.
    http, instance = bot

    def update(n: int) -> dict[str, Any]:
        u = fixture("telegram", "text")
        u["update_id"] += n
        u["message"]["message_id"] += n
        u["message"]["text"] = f"part {n}"
        return u
    for n in (3, 1, 3, 2, 1):
        assert (await post_update(app, instance, update(n))).status_code == 200
    _, messages = await only_thread(http)
    assert [m["text"] for m in messages] == ["part 3", "part 1", "part 2"]


async def _one_message(http: httpx.AsyncClient) -> dict[str, Any]:
    _, messages = await only_thread(http)
    assert len(messages) == 1
    return messages[0]


async def _file(app: AppServer, attachment: dict[str, Any]) -> bytes:
    headers = {"Authorization": f"Bearer {await login(app)}"}
    async with httpx.AsyncClient(base_url=app.http, headers=headers) as http:
        r = await http.get(attachment["url"])
        assert r.status_code == 200
        return r.content


async def test_photo_with_caption_keeps_the_largest_size(bot: Any, app: AppServer, tg: FakeBotApi) -> None:
    http, instance = bot
    tg.add_file("AgACAgIAAxkBAAIBlarge", b"\xff\xd8\xff\xe0large-jpeg")
    tg.add_file("AgACAgIAAxkBAAIBsmall", b"\xff\xd8\xff\xe0small")
    await post_update(app, instance, fixture("telegram", "photo"))
    m = await _one_message(http)
    assert m["text"] == "This is what arrived"
    [a] = m["attachments"]
    assert (a["name"], a["content_type"], a["size"]) == ("photo.jpg", "image/jpeg", len(b"\xff\xd8\xff\xe0large-jpeg"))
    assert await _file(app, a) == b"\xff\xd8\xff\xe0large-jpeg"


async def test_document_keeps_its_name_and_type(bot: Any, app: AppServer, tg: FakeBotApi) -> None:
    http, instance = bot
    tg.add_file("BQACAgIAAxkBAAIBdoc", b"%PDF-1.4 invoice")
    await post_update(app, instance, fixture("telegram", "document"))
    [a] = (await _one_message(http))["attachments"]
    assert (a["name"], a["content_type"]) == ("invoice.pdf", "application/pdf")
    assert await _file(app, a) == b"%PDF-1.4 invoice"


async def test_a_file_of_a_refused_type_is_named_instead_of_kept(bot: Any, app: AppServer, tg: FakeBotApi) -> None:
    http, instance = bot
    tg.add_file("BQACAgIAAxkBAAIBexe", b"MZ\x90\x00")
    update = fixture("telegram", "document")
    update["message"]["document"].update(file_id="BQACAgIAAxkBAAIBexe", file_name="setup.exe",
                                         mime_type="application/x-msdownload")
    await post_update(app, instance, update)
    m = await _one_message(http)
    assert m["attachments"] == [] and m["text"].startswith("[setup.exe: not kept: ")


async def test_voice_message_is_kept_as_audio(bot: Any, app: AppServer, tg: FakeBotApi) -> None:
    http, instance = bot
    tg.add_file("AwACAgIAAxkBAAIBvoice", b"OggS-voice")
    await post_update(app, instance, fixture("telegram", "voice"))
    [a] = (await _one_message(http))["attachments"]
    assert (a["name"], a["content_type"], a["size"]) == ("voice.ogg", "audio/ogg", len(b"OggS-voice"))


async def test_static_sticker_becomes_an_image(bot: Any, app: AppServer, tg: FakeBotApi) -> None:
    http, instance = bot
    tg.add_file("CAACAgIAAxkBAAIBsticker", b"RIFF-webp")
    await post_update(app, instance, fixture("telegram", "sticker"))
    m = await _one_message(http)
    assert m["text"] == "👍"
    assert [a["content_type"] for a in m["attachments"]] == ["image/webp"]


async def test_animated_sticker_becomes_a_clear_placeholder(bot: Any, app: AppServer) -> None:
    http, instance = bot
    await post_update(app, instance, fixture("telegram", "sticker_animated"))
    m = await _one_message(http)
    assert m["text"] == "[sticker 😂]" and m["attachments"] == []


async def test_a_location_keeps_its_coordinates(bot: Any, app: AppServer) -> None:
    http, instance = bot
    await post_update(app, instance, fixture("telegram", "location"))
    assert (await _one_message(http))["text"] == (
        "[location: 55.75, 37.61 https://www.openstreetmap.org/?mlat=55.75&mlon=37.61]")


async def test_unsupported_message_type_says_so_instead_of_vanishing(bot: Any, app: AppServer) -> None:
    http, instance = bot
    update = fixture("telegram", "location")
    update["message"]["dice"] = {"emoji": "🎲", "value": 4}
    del update["message"]["location"]
    await post_update(app, instance, update)
    assert (await _one_message(http))["text"] == "[dice message: not supported here]"


async def test_an_edit_changes_the_shown_text_and_keeps_the_old_one(bot: Any, app: AppServer) -> None:
    http, instance = bot
    token = await login(app)
    inbox = await operator(app, token)
    await post_update(app, instance, fixture("telegram", "text"))
    first = await inbox.expect("message", channel="telegram")
    await post_update(app, instance, fixture("telegram", "edited"))
    updated = await inbox.expect("message.updated")
    assert updated["message"]["id"] == first["message"]["id"]
    assert updated["message"]["text"] == "Hello, I have a question about my order #1234"
    m = await _one_message(http)
    assert m["text"] == "Hello, I have a question about my order #1234"
    original = (await http.get(f"/messages/{m['id']}/original")).json()
    assert [e["text"] for e in original["edits"]] == ["Hello, I have a question about my order"]
    await post_update(app, instance, fixture("telegram", "edited"))  # redelivered edit: no change
    assert len((await http.get(f"/messages/{m['id']}/original")).json()["edits"]) == 1
    await inbox.close()


async def _reply(http: httpx.AsyncClient, conv_id: int, text: str) -> dict[str, Any]:
    r = await http.post(f"/conversations/{conv_id}/messages", json={"text": text})
    assert r.status_code == 201, r.text
    return r.json()["message"]  # type: ignore[no-any-return]


async def _state(http: httpx.AsyncClient, conv_id: int, message_id: int, *states: str) -> dict[str, Any] | None:
    for m in await thread(http, conv_id):
        if m["id"] == message_id and m["delivery_state"] in states:
            return m
    return None


async def test_operator_reply_goes_out_once_and_is_marked_sent(bot: Any, app: AppServer, tg: FakeBotApi) -> None:
    http, instance = bot
    await post_update(app, instance, fixture("telegram", "text"))
    conv_id, _ = await only_thread(http)
    assert tg.sent() == []  # nothing echoed back out
    r = await http.post(f"/conversations/{conv_id}/notes", json={"text": "private: check the warehouse"})
    assert r.status_code == 201
    reply = await _reply(http, conv_id, "Your order ships tomorrow")
    assert reply["channel"] == "telegram" and reply["delivery_state"] == "pending"
    await eventually(lambda: _state(http, conv_id, reply["id"], "sent"), what="reply sent")
    assert [(c.params["chat_id"], c.params["text"]) for c in tg.sent()] == [("111222333", "Your order ships tomorrow")]


async def test_429_retry_after_is_honoured_then_sent_once(bot: Any, app: AppServer, tg: FakeBotApi) -> None:
    http, instance = bot
    await post_update(app, instance, fixture("telegram", "text"))
    conv_id, _ = await only_thread(http)
    tg.fail_next("sendMessage", {"error_code": 429, "description": "Too Many Requests: retry after 1",
                                 "parameters": {"retry_after": 1}})
    reply = await _reply(http, conv_id, "Sorry for the wait")
    await eventually(lambda: _state(http, conv_id, reply["id"], "sent"), what="reply sent after 429")
    assert [c.method for c in tg.calls if c.method.startswith("send")] == ["sendMessage:refused", "sendMessage"]


@pytest.fixture
def no_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outbound worker looks for due replies only when woken (or once an hour)."""
    monkeypatch.setattr("chat_server.outbound.OutboundWorker.poll_seconds", 3600.0)


async def test_a_reply_leaves_when_committed_not_at_the_next_poll(no_polling: None, bot: Any, app: AppServer,
                                                                  tg: FakeBotApi) -> None:
    http, instance = bot
    await post_update(app, instance, fixture("telegram", "text"))
    conv_id, _ = await only_thread(http)
    for text in ("First answer", "Second answer"):
        reply = await _reply(http, conv_id, text)
        await eventually(lambda message_id=reply["id"]: _state(http, conv_id, message_id, "sent"),
                         what="reply sent without a poll")
    assert [c.params["text"] for c in tg.sent()] == ["First answer", "Second answer"]


async def test_blocked_bot_shows_the_reply_failed_with_the_reason(bot: Any, app: AppServer, tg: FakeBotApi) -> None:
    http, instance = bot
    inbox = await operator(app, await login(app))
    await post_update(app, instance, fixture("telegram", "text"))
    conv_id, _ = await only_thread(http)
    tg.fail_next("sendMessage", {"error_code": 403, "description": "Forbidden: bot was blocked by the user"})
    reply = await _reply(http, conv_id, "Hello?")
    frame = await inbox.expect("message.updated", delivery_state="failed")
    assert frame["message"]["id"] == reply["id"]
    assert "blocked by the user" in frame["message"]["delivery_error"]
    assert tg.sent() == []
    await inbox.close()


async def test_operator_reply_with_an_uploaded_file_goes_out_as_a_document(bot: Any, app: AppServer,
                                                                         tg: FakeBotApi) -> None:
    http, instance = bot
    await post_update(app, instance, fixture("telegram", "text"))
    conv_id, _ = await only_thread(http)
    r = await http.post("/attachments", params={"name": "prices.pdf"}, content=b"%PDF-1.4 price list",
                        headers={"content-type": "application/pdf"})
    assert r.status_code == 201, r.text
    r = await http.post(f"/conversations/{conv_id}/messages", json={"text": "Our prices", "attachment_ids": [r.json()["id"]]})
    assert r.status_code == 201, r.text
    reply = r.json()["message"]
    await eventually(lambda: _state(http, conv_id, reply["id"], "sent"), what="reply with a file sent")
    [call] = tg.sent("sendDocument")
    assert call.files["document"] == b"%PDF-1.4 price list" and call.params["caption"] == "Our prices"
    assert tg.sent() == []


async def test_adapter_sends_attachments_as_documents_with_the_caption(tg: FakeBotApi) -> None:
    adapter = TelegramAdapter()
    config = TelegramConfig.model_validate(tg_config(tg))
    sent = await adapter.send(config, OutboundMessage(
        message_id=5, recipient="111222333", text="Here is your invoice",
        attachments=[OutboundAttachment("invoice.pdf", "application/pdf", b"%PDF-1.4 invoice")]))
    [call] = tg.sent("sendDocument")
    assert call.files["document"] == b"%PDF-1.4 invoice" and call.params["document"] == "invoice.pdf"
    assert call.params["caption"] == "Here is your invoice" and tg.sent() == []
    assert sent.external_id.startswith("7000001:111222333:")


async def test_adapter_splits_text_longer_than_telegram_allows(tg: FakeBotApi) -> None:
    config = TelegramConfig.model_validate(tg_config(tg))
    await TelegramAdapter().send(config, OutboundMessage(message_id=6, recipient="111222333", text="x" * 5000))
    assert [len(c.params["text"]) for c in tg.sent()] == [4096, 904]


async def test_long_polling_stores_updates_and_resumes_after_a_restart(
    tmp_path: Path, db_url: str, tg: FakeBotApi,
) -> None:
    async with AppServer(tmp_path, db_url) as app, await admin(app) as http:
        await add_channel(http, "telegram", tg_config(tg, mode="polling", poll_timeout=1))
        tg.queue_update(fixture("telegram", "text"))
        await eventually(lambda: _convs(http), what="polled message stored")
        assert tg.sent("deleteWebhook")
    tg.queue_update(fixture("telegram", "edited"))
    async with AppServer(tmp_path, db_url) as app, await admin(app) as http:
        async def edited() -> Any:
            _, messages = await only_thread(http)
            return messages[0]["text"].endswith("#1234")
        await eventually(edited, what="edit polled after restart")
        _, messages = await only_thread(http)
        assert len(messages) == 1


async def _convs(http: httpx.AsyncClient) -> Any:
    return (await http.get("/conversations")).json()["items"]


async def test_queued_replies_survive_a_restart(tmp_path: Path, db_url: str, tg: FakeBotApi) -> None:
    async with AppServer(tmp_path, db_url, channel_workers=False) as app, await admin(app) as http:
        instance = await add_channel(http, "telegram", tg_config(tg))
        await post_update(app, instance, fixture("telegram", "text"))
        conv_id, _ = await only_thread(http)
        reply = await _reply(http, conv_id, "Sent after the restart")
    assert tg.sent() == []  # this process never sent it
    async with AppServer(tmp_path, db_url) as app, await admin(app) as http:
        await eventually(lambda: _state(http, conv_id, reply["id"], "sent"), what="sent by the next process")
    assert [c.params["text"] for c in tg.sent()] == ["Sent after the restart"]
