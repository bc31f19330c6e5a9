"""One person, three channels, one conversation: a visitor chats in the widget, follows
"continue in Telegram", writes from Telegram, then emails from the address they gave; the
operator sees one thread and replies on each channel; each reply reaches its service once."""

from __future__ import annotations

import asyncio
import re
import smtplib
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trustme

from chat_server.actions.links import LINK_TTL_SECONDS, issue_link_token, read_link_token
from tests.appserver import AppServer
from tests.channel_fakes import fake_vk_registry
from tests.channel_helpers import add_channel, admin, conversations, eventually, fixture, thread
from tests.fakes.telegram_api import TOKEN as TG_TOKEN
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.vk_api import GROUP_ID, FakeVk
from tests.fakes.vk_api import TOKEN as VK_TOKEN
from tests.harness import login, operator, visitor
from tests.mailservers import SmtpSink
from tests.services import free_port

pytestmark = pytest.mark.anyio

TG_SECRET = "telegram-webhook-secret-123"


@pytest.fixture
async def world(tmp_path: Path, db_url: str) -> AsyncIterator[dict[str, Any]]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    vk = FakeVk()
    registry = fake_vk_registry(vk)
    listen_port = free_port()
    with SmtpSink(ca) as sink:
        async with FakeBotApi() as tg, AppServer(tmp_path, db_url, registry) as app, await admin(app) as http:
            tg_instance = await add_channel(http, "telegram", {
                "token": TG_TOKEN, "bot_username": "acme_help_bot", "api_base": tg.base, "mode": "webhook",
                "webhook_secret": TG_SECRET})
            await add_channel(http, "vk", {"token": VK_TOKEN, "group_id": GROUP_ID, "mode": "callback",
                                           "confirmation": "x", "secret": "s", "screen_name": "acme"})
            await add_channel(http, "email", {
                "address": "support@acme.test", "smtp_host": "127.0.0.1", "smtp_port": sink.port,
                "smtp_username": "smtp-user", "smtp_password": "smtp-password", "ca_file": str(ca_file),
                "listen_port": listen_port})
            yield {"app": app, "http": http, "tg": tg, "vk": vk, "sink": sink, "tg_instance": tg_instance,
                   "listen_port": listen_port}


async def telegram_update(app: AppServer, instance: dict[str, Any], update: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=app.http) as http:
        r = await http.post(f"/api/v1/channels/{instance['id']}/webhook", json=update,
                            headers={"X-Telegram-Bot-Api-Secret-Token": TG_SECRET})
        assert r.status_code == 200


async def channel_links(app: AppServer, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Visitor {token}"} if token else {}
    async with httpx.AsyncClient(base_url=app.http) as http:
        return await http.get("/api/v1/widget/channel-links", headers=headers)


def email_from(sender: str, text: str) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = sender, "support@acme.test", "From my mail", "<e2e@example.org>"
    m.set_content(text)
    return m.as_bytes()


async def test_one_person_three_channels_one_conversation(world: dict[str, Any]) -> None:
    app, http, tg, sink = world["app"], world["http"], world["tg"], world["sink"]
    inbox = await operator(app, await login(app))
    site, welcome = await visitor(app)
    await site.send(type="message.send", text="Hi from the website", client_msg_id="w1")
    await site.expect("ack")
    await inbox.expect("message", channel="widget")

    r = await channel_links(app, welcome["token"])
    assert r.status_code == 200
    links = {link["channel"]: link["url"] for link in r.json()["links"]}
    assert set(links) == {"telegram", "vk"}
    assert links["vk"].startswith("https://vk.me/acme?ref=")
    url = urlsplit(links["telegram"])
    assert (url.netloc, url.path) == ("t.me", "/acme_help_bot")
    token = parse_qs(url.query)["start"][0]
    assert len(token) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", token)

    # The person opens the bot through the link: Telegram sends "/start <token>".
    await telegram_update(app, world["tg_instance"], fixture("telegram", "start_token", token=token))
    await telegram_update(app, world["tg_instance"], fixture("telegram", "text"))
    await inbox.expect("message", channel="telegram")
    [conv] = await conversations(http)

    # The site tells us who the visitor is (the widget's identify), giving their address.
    await site.send(type="identify", email="anna@example.org", name="Anna")
    await site.expect("identified")
    raw = email_from("Anna <anna@example.org>", "And this is me by email")

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", world["listen_port"], timeout=10) as smtp:
            smtp.sendmail("anna@example.org", ["support@acme.test"], raw)
    await asyncio.to_thread(send)
    await inbox.expect("message", channel="email")

    [conv] = await conversations(http)
    items = await thread(http, conv["id"])
    inbound = [(m["channel"], m["text"]) for m in items if m["direction"] == "inbound"]
    assert inbound == [("widget", "Hi from the website"), ("telegram", "Hello, I have a question about my order"),
                       ("email", "And this is me by email")]
    card = (await http.get(f"/contacts/{conv['contact']['id']}")).json()
    kinds = {i["kind"]: i for i in card["identities"]}
    assert set(kinds) == {"visitor", "telegram", "email"}
    assert any("continue in Telegram" in m["reason"] for m in card["merges"]) or \
        "continue in Telegram" in kinds["telegram"]["linked_reason"]

    replies = {}
    for channel in ("widget", "telegram", "email"):
        r = await http.post(f"/conversations/{conv['id']}/messages",
                            json={"text": f"Answer on {channel}", "channel": channel})
        assert r.status_code == 201, r.text
        replies[channel] = r.json()["message"]["id"]
    got = await site.expect("message", text="Answer on widget")
    assert got["message"]["direction"] == "outbound"

    async def all_sent() -> Any:
        states = {m["id"]: m["delivery_state"] for m in await thread(http, conv["id"])}
        return all(states[replies[c]] == "sent" for c in ("telegram", "email"))
    await eventually(all_sent, what="telegram and email replies sent")
    # One more reply on each: a conversation's replies leave in order, so a doubled send of the
    # first would have left before this one is sent.
    for channel in ("telegram", "email"):
        r = await http.post(f"/conversations/{conv['id']}/messages", json={"text": f"And one more on {channel}", "channel": channel})
        replies[channel] = r.json()["message"]["id"]
    await eventually(all_sent, what="the later replies sent")
    assert [(c.params["chat_id"], c.params["text"]) for c in tg.sent()] == [
        ("111222333", "Answer on telegram"), ("111222333", "And one more on telegram")]
    assert [(r.rcpt_tos, r.message.get_content().strip()) for r in sink.received] == [
        (["anna@example.org"], "Answer on email"), (["anna@example.org"], "And one more on email")]
    assert world["vk"].sent == []
    await site.close()
    await inbox.close()


async def test_a_link_token_works_once(world: dict[str, Any]) -> None:
    app, http = world["app"], world["http"]
    site, welcome = await visitor(app)
    await site.send(type="message.send", text="Hello", client_msg_id="a1")
    await site.expect("ack")
    links = (await channel_links(app, welcome["token"])).json()["links"]
    token = parse_qs(urlsplit(next(x["url"] for x in links if x["channel"] == "telegram")).query)["start"][0]
    await telegram_update(app, world["tg_instance"], fixture("telegram", "start_token", token=token))
    # Someone else replays the same link: they get a contact of their own.
    other = fixture("telegram", "start_token", token=token)
    other["update_id"] += 1000
    other["message"]["from"]["id"] = other["message"]["chat"]["id"] = 999
    other["message"]["message_id"] = 99
    await telegram_update(app, world["tg_instance"], other)
    other_text = fixture("telegram", "text")
    other_text["update_id"] += 1000
    other_text["message"]["from"]["id"] = other_text["message"]["chat"]["id"] = 999
    await telegram_update(app, world["tg_instance"], other_text)
    convs = await conversations(http)
    assert len(convs) == 2
    await site.close()


async def test_channel_links_need_the_visitors_token(world: dict[str, Any]) -> None:
    app = world["app"]
    assert (await channel_links(app, None)).status_code == 401
    assert (await channel_links(app, "forged.token")).status_code == 401


def test_link_tokens_are_signed_short_lived_and_fit_telegram() -> None:
    token = issue_link_token("secret", 123456789)
    assert len(token) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    contact_id, _ = read_link_token("secret", token) or (None, None)
    assert contact_id == 123456789
    assert read_link_token("other-secret", token) is None
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert read_link_token("secret", tampered) is None
    assert read_link_token("secret", token, now=time.time() + LINK_TTL_SECONDS + 5) is None
