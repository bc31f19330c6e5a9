"""The widget under real conditions, in headless Chromium: reloads, several tabs, a server
restart while the visitor types, identity verification, single-page navigation, the size budget."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser import chromium, watch_console, widget
from tests.harness import ChatServer, Socket, api, login, operator, visitor

pytestmark = pytest.mark.anyio

BUDGET = 25 * 1024  # gzipped bytes loaded before the visitor opens the chat


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    tmp = tmp_path_factory.mktemp("widget-site")
    chat = ChatServer(tmp, f"sqlite+aiosqlite:///{tmp / 'chat.db'}")
    chat.start()
    yield chat
    chat.stop()


async def online_operator(server: ChatServer, cursors: dict[int, dict[str, int]] | None = None) -> tuple[str, Socket]:
    token = await login(server)
    op = await operator(server, token, cursors)
    await op.send(type="presence", availability="online")
    return token, op


async def say(page: Page, text: str) -> None:
    if await widget(page, ".panel").count() == 0 or not await widget(page, ".panel").is_visible():
        await widget(page, ".launcher").click()
    await widget(page, "textarea").fill(text)
    await widget(page, "textarea").press("Enter")


async def contact_named(server: ChatServer, token: str, name: str) -> dict[str, Any]:
    async with api(server, token) as http:
        found = (await http.get("/contacts", params={"q": name})).json()["items"]
        assert len(found) == 1, found
        return dict((await http.get(f"/contacts/{found[0]['id']}")).json())


async def test_reload_keeps_history_and_tabs_share_conversation_and_badge(site: ChatServer) -> None:
    token, op = await online_operator(site)
    problems: list[str] = []
    async with chromium() as browser:
        context = await browser.new_context()
        tab1 = await context.new_page()
        watch_console(tab1, problems)
        await tab1.goto(site.http + "/demo/")
        await say(tab1, "first words")
        first = await op.expect("message", text="first words", timeout=10)
        conversation_id = first["message"]["conversation_id"]
        await tab1.keyboard.press("Escape")

        tab2 = await context.new_page()
        watch_console(tab2, problems)
        await tab2.goto(site.http + "/demo/pricing")
        await expect(widget(tab2, ".launcher")).to_be_visible()
        await tab2.wait_for_function("() => window.ChatWidget && document.querySelector('[data-chat-widget]')")
        await op.send(type="message.send", conversation_id=conversation_id, client_msg_id=uuid.uuid4().hex,
                      text="an answer for both tabs")
        for tab in (tab1, tab2):
            await expect(widget(tab, ".badge")).to_have_text("1")
        assert "💬" in await tab2.title()  # the closed chat announces the new message in the title
        await widget(tab1, ".launcher").click()
        await expect(widget(tab1, ".msg:not(.mine)")).to_contain_text("an answer for both tabs")
        # Read in one tab, cleared in all.
        await expect(widget(tab2, ".badge")).to_be_hidden()
        await expect(widget(tab1, ".badge")).to_be_hidden()

        await say(tab2, "from the second tab")
        second = await op.expect("message", text="from the second tab", timeout=10)
        assert second["message"]["conversation_id"] == conversation_id  # one visitor, one conversation
        await expect(widget(tab1, ".msg.mine").last).to_contain_text("from the second tab")

        await tab1.reload()
        await widget(tab1, ".launcher").click()
        texts = widget(tab1, ".log .text")
        await expect(texts).to_have_text(["first words", "an answer for both tabs", "from the second tab"])
        await expect(widget(tab1, ".badge")).to_be_hidden()  # read before the reload stays read
        await context.close()
    assert problems == []
    await op.close()


async def test_server_restart_while_typing_delivers_the_queue_once_in_order(tmp_path: Path) -> None:
    server = ChatServer(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    server.start()
    try:
        token, op = await online_operator(server)
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(server.http + "/demo/")
            await say(page, "before the restart")
            first = await op.expect("message", text="before the restart", timeout=10)
            conversation_id = first["message"]["conversation_id"]
            await expect(widget(page, ".msg.mine .meta")).not_to_contain_text("Sending")
            await widget(page, "textarea").fill("typed while the server")

            server.stop()
            await widget(page, "textarea").press("Enter")
            await say(page, "is away, then this")
            await say(page, "and this last")
            pending = widget(page, ".msg.mine .meta")
            await expect(pending.nth(1)).to_contain_text("Sending")
            await expect(pending.nth(3)).to_contain_text("Sending")

            server.start()
            op2 = await operator(server, token, {conversation_id: {"seq": first["message"]["seq"], "epoch": 1}})
            got = [await op2.expect("message", conversation_id=conversation_id, timeout=30) for _ in range(3)]
            assert [m["message"]["text"] for m in got] == [
                "typed while the server", "is away, then this", "and this last"]
            assert [m["message"]["seq"] for m in got] == [2, 3, 4]
            await expect(widget(page, ".msg.mine .meta")).not_to_contain_text(["Sending"] * 4, timeout=15_000)
            await expect(widget(page, ".log .text")).to_have_text(
                ["before the restart", "typed while the server", "is away, then this", "and this last"])
            extra = [f for f in await op2.settled() if f["type"] == "message"]
            assert extra == []
            async with api(server, token) as http:
                history = (await http.get(f"/conversations/{conversation_id}/messages")).json()["items"]
            assert [m["text"] for m in history] == [
                "before the restart", "typed while the server", "is away, then this", "and this last"]
            await op2.close()
        await op.close()
    finally:
        server.stop()


async def test_identify_needs_the_right_user_hash_to_reach_a_known_contact(site: ChatServer) -> None:
    token = await login(site)
    secret = "site-secret-" + uuid.uuid4().hex
    email = f"known-{uuid.uuid4().hex[:8]}@example.com"
    good = hmac.new(secret.encode(), email.encode(), hashlib.sha256).hexdigest()
    async with api(site, token) as http:
        r = await http.patch("/site", json={"identity_secret": secret})
        assert r.status_code == 200 and r.json()["identity_secret_set"] is True
        assert secret not in r.text and secret not in (await http.get("/site")).text
    try:
        # The known customer, signed in elsewhere, with a private conversation.
        known, _ = await visitor(site)
        await known.send(type="identify", email=email, user_hash=good, name="Known Customer")
        await known.expect("identified")
        await known.send(type="message.send", client_msg_id=uuid.uuid4().hex, text="my order 42 ships to Baker St")
        await known.expect("ack")
        await known.close()

        problems: list[str] = []
        async with chromium() as browser:
            page = await browser.new_page()
            watch_console(page, problems)
            await page.goto(site.http + "/demo/")
            await page.wait_for_function("() => window.ChatWidget && window.ChatWidget.version")
            refused = await page.evaluate(
                "([e]) => ChatWidget.identify({email: e}, 'deadbeef').then(() => 'accepted', (err) => err.code)",
                [email])
            assert refused == "invalid_user_hash"
            refused = await page.evaluate(
                "([e]) => ChatWidget.identify({email: e}).then(() => 'accepted', (err) => err.code)", [email])
            assert refused == "invalid_user_hash"
            await say(page, "hello?")
            await expect(widget(page, ".log .text")).to_have_text(["hello?"])
            await page.wait_for_timeout(300)
            assert "Baker St" not in await widget(page, ".log").inner_text()
            card = await contact_named(site, token, "Known Customer")
            assert card["merges"] == []  # the known contact absorbed nobody

            merged = await page.evaluate(
                "([e, h]) => ChatWidget.identify({email: e, name: 'Known Customer'}, h).then((r) => r.merged)",
                [email, good])
            assert merged is True
            await expect(widget(page, ".log")).to_contain_text("Baker St")
            await expect(widget(page, ".log")).to_contain_text("hello?")
        assert problems == []
    finally:
        async with api(site, token) as http:
            assert (await http.patch("/site", json={"identity_secret": None})).json()["identity_secret_set"] is False


async def test_spa_navigation_is_tracked_and_the_size_budget_holds(site: ChatServer) -> None:
    token = await login(site)
    name = f"spa-{uuid.uuid4().hex[:8]}"
    loaded: dict[str, bytes] = {}
    async with chromium() as browser:
        page = await browser.new_page()
        await page.add_init_script("window.__keys = Object.keys(window)")

        async def record(response: Any) -> None:
            if response.url.startswith(site.http) and "/api/" not in response.url and "/demo" not in response.url:
                loaded[response.url.removeprefix(site.http)] = await response.body()

        page.on("response", record)
        await page.goto(site.http + "/demo/product")
        await page.wait_for_function("() => window.ChatWidget && window.ChatWidget.version")
        await page.evaluate("([n]) => ChatWidget.identify({name: n})", [name])
        before_open = dict(loaded)
        assert "/widget.js" in before_open and "/widget/panel.js" not in before_open
        size = sum(len(gzip.compress(body, 9)) for body in before_open.values())
        assert size <= BUDGET, f"{size} gzipped bytes before the chat opens: {sorted(before_open)}"
        added = await page.evaluate("Object.keys(window).filter(k => !window.__keys.includes(k))")
        assert set(added) - {"__keys", "show"} == {"ChatWidget"}  # show(): the product page's own

        await page.click("text=Features")
        await page.click("text=Security")
        await page.go_back()
        await expect(page).to_have_url(site.http + "/demo/product/features")
        async with page.expect_response(site.http + "/widget/panel.js"):  # the panel loads when the chat opens
            await widget(page, ".launcher").click()
        await expect(widget(page, ".panel")).to_be_visible()
        # The visitor stays on the page meanwhile: a browser that quits may drop frames it has
        # not put on the wire yet, which no server can store.
        for _ in range(100):
            card = await contact_named(site, token, name)
            viewed = [e["url"].removeprefix(site.http) for e in card["events"] if e["name"] == "page_viewed"]
            if len(viewed) >= 4:
                break
            await asyncio.sleep(0.1)  # the last events may still be on their way
    assert list(reversed(viewed)) == ["/demo/product", "/demo/product/features", "/demo/product/security",
                                      "/demo/product/features"]
    assert card["contact"]["properties"]["pages_viewed"] == 4
    assert card["contact"]["properties"]["last_page"]["title"] == "Acme Cloud — features"
