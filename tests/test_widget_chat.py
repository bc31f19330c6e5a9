"""The widget in real headless Chromium against a running server, with a real operator
client on the other side: write, reply, typing, receipts, contact attribution, markup as text."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser import chromium, watch_console, widget
from tests.channel_helpers import eventually
from tests.harness import ChatServer, api, login, operator

pytestmark = pytest.mark.anyio

HOSTILE = '<img src=x onerror=alert(1)> <script>alert(2)</script>'


async def online_operator(server: ChatServer) -> tuple[str, object]:
    token = await login(server)
    op = await operator(server, token)
    await op.send(type="presence", availability="online")
    await op.expect("presence")
    return token, op


async def test_visitor_writes_operator_sees_page_and_utm_replies_with_typing(server: ChatServer) -> None:
    token, op = await online_operator(server)
    problems: list[str] = []
    async with chromium() as browser:
        page = await browser.new_page()
        watch_console(page, problems)
        await page.goto(server.http + "/demo/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=bf")
        await widget(page, ".launcher").click()
        box = widget(page, "textarea")
        await expect(box).to_be_focused()
        await box.fill("Привет 👋 where is my order?")
        await box.press("Enter")

        got = await op.expect("message", text="Привет 👋 where is my order?", timeout=10)
        conversation_id = got["message"]["conversation_id"]
        contact_id = got["message"]["author"]["id"]
        # The widget tracks chat_started beside the message, as its own event: it may be
        # written a moment after the message reached the operator.
        wanted = {"session_started", "page_viewed", "utm_detected", "chat_started"}
        async with api(server, token) as http:
            async def tracked() -> dict[str, Any] | None:
                found: dict[str, Any] = (await http.get(f"/contacts/{contact_id}")).json()
                return found if wanted <= {e["name"] for e in found["events"]} else None
            card = await eventually(tracked, within=15, what=f"events {wanted} on the card")
        contact = card["contact"]
        assert contact["first_utm"] == {"source": "newsletter", "medium": "email", "campaign": "bf"}
        assert "/demo/pricing?utm_source=newsletter" in contact["first_landing_page"]
        assert contact["properties"]["last_utm"] == {"source": "newsletter", "medium": "email", "campaign": "bf"}
        assert contact["properties"]["browser"] == "Chrome" and contact["properties"]["timezone"]
        assert contact["properties"]["last_page"]["url"].startswith(server.http + "/demo/pricing")
        assert contact["sessions"] == 1
        viewed = [e for e in card["events"] if e["name"] == "page_viewed"]
        assert viewed[0]["url"].startswith(server.http + "/demo/pricing")

        await op.send(type="typing", conversation_id=conversation_id, is_typing=True)
        await expect(widget(page, ".typing")).to_contain_text("Admin")
        await op.send(type="message.send", conversation_id=conversation_id, client_msg_id=uuid.uuid4().hex,
                      text="Hello from support, see https://example.com/orders.")
        reply = widget(page, ".msg:not(.mine)").last
        await expect(reply).to_contain_text("Hello from support")
        await expect(widget(page, ".typing")).to_have_text("")
        link = reply.locator("a")
        await expect(link).to_have_attribute("href", "https://example.com/orders")
        await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        await expect(widget(page, "header b")).to_have_text("Admin")
        # The operator's reply marks the thread read: the visitor's own message says so.
        await expect(widget(page, ".msg.mine .meta")).to_contain_text("Read")
        # The chat is open, so the reply is read at once and the operator hears of it.
        receipt = await op.expect("receipt", conversation_id=conversation_id, reader="contact", state="read")
        assert receipt["seq"] == 2
        await expect(widget(page, ".badge")).to_be_hidden()

        # Typing shows both ways.
        await box.press_sequentially("thanks")
        typing = await op.expect("typing", conversation_id=conversation_id, is_typing=True)
        assert typing["author"]["type"] == "contact"

        # Keyboard: Escape closes and gives focus back to the launcher.
        await page.keyboard.press("Escape")
        await expect(widget(page, ".panel")).to_be_hidden()
        await expect(widget(page, ".launcher")).to_be_focused()
    assert problems == []
    await op.close()


async def test_markup_typed_on_either_side_is_shown_as_text_and_runs_nothing(server: ChatServer) -> None:
    token, op = await online_operator(server)
    problems: list[str] = []
    async with chromium() as browser:
        page = await browser.new_page()
        watch_console(page, problems)
        await page.goto(server.http + "/demo/")
        await widget(page, ".launcher").click()
        await widget(page, "textarea").fill(HOSTILE)
        await widget(page, "textarea").press("Enter")
        got = await op.expect("message", text=HOSTILE, timeout=10)  # stored exactly as typed
        answer = HOSTILE + ' <a href="javascript:alert(3)">x</a>'
        await op.send(type="message.send", conversation_id=got["message"]["conversation_id"],
                      client_msg_id=uuid.uuid4().hex, text=answer)
        await expect(widget(page, ".msg:not(.mine) .text")).to_have_text(answer)
        await expect(widget(page, ".msg.mine .text")).to_have_text(HOSTILE)
        assert await widget(page, ".log img").count() == 0
        assert await widget(page, ".log script").count() == 0
        assert await widget(page, ".log a").count() == 0
        await page.wait_for_timeout(300)  # a broken image's onerror would have fired by now
        assert await page.evaluate("Object.keys(window).filter(k => k.startsWith('Chat'))") == ["ChatWidget"]
    assert problems == []
    await op.close()
