"""More of the widget in headless Chromium: proactive messages and their reports, the offline
mode, attachments with previews, Russian texts, a phone-sized screen, isolation from the site."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.server
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from chat_server.actions.proactive import do_send_proactive
from chat_server.bus import RedisBus
from chat_server.settings import Settings
from tests.browser import chromium, watch_console, widget
from tests.channel_helpers import eventually
from tests.harness import ChatServer, api, login, operator
from tests.inprocess import runtime_for
from tests.services import RedisServer

pytestmark = pytest.mark.anyio

# A real 2x2 PNG, so the preview has pixels to show.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[ChatServer]:
    tmp = tmp_path_factory.mktemp("widget-features")
    chat = ChatServer(tmp, f"sqlite+aiosqlite:///{tmp / 'chat.db'}", redis_url=redis_server.url)
    chat.start()
    yield chat
    chat.stop()


async def open_page(browser: Any, server: ChatServer, path: str = "/demo/", **context: Any) -> Page:
    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    await page.goto(server.http + path)
    await page.wait_for_function("() => window.ChatWidget && window.ChatWidget.version")
    return page  # type: ignore[no-any-return]


async def contact_id_named(server: ChatServer, token: str, name: str) -> int:
    async with api(server, token) as http:
        for _ in range(50):
            found = (await http.get("/contacts", params={"q": name})).json()["items"]
            if found:
                return int(found[0]["id"])
            await asyncio.sleep(0.1)
    raise AssertionError(f"no contact named {name}")


async def events_of(server: ChatServer, token: str, contact_id: int, prefix: str, want: int) -> list[dict[str, Any]]:
    async with api(server, token) as http:
        for _ in range(50):
            card = (await http.get(f"/contacts/{contact_id}")).json()
            found = [e for e in card["events"] if e["name"].startswith(prefix)]
            if len(found) >= want:
                return found
            await asyncio.sleep(0.1)
    return found


async def test_proactive_chat_message_and_card_report_delivered_read_clicked_replied(
    site: ChatServer, redis_server: RedisServer
) -> None:
    token = await login(site)
    settings = Settings(database_url=site.database_url, secret_key="test-secret-key", redis_url=redis_server.url,
                        data_dir=site.tmp / "data")
    rt = runtime_for(settings, RedisBus(redis_server.url))
    await rt.bus.start([])
    problems: list[str] = []
    try:
        async with chromium() as browser:
            page = await open_page(browser, site)
            watch_console(page, problems)
            name = f"pro-{uuid.uuid4().hex[:8]}"
            await page.evaluate("([n]) => ChatWidget.identify({name: n})", [name])
            contact_id = await contact_id_named(site, token, name)

            card = await do_send_proactive(rt, contact_id, "Need a hand with pricing? 👋", display="card",
                                           author_name="Acme bot")
            popup = widget(page, ".card")
            await expect(popup).to_contain_text("Need a hand with pricing? 👋")
            await expect(popup).to_contain_text("Acme bot")
            await expect(widget(page, ".panel")).to_have_count(0)  # a card does not open the chat
            await popup.get_by_role("button", name="Reply").click()
            await expect(widget(page, ".panel")).to_be_visible()
            await widget(page, "textarea").fill("yes please")
            await widget(page, "textarea").press("Enter")
            reports = await events_of(site, token, contact_id, "triggered_message_", 4)
            assert sorted(e["name"] for e in reports) == [
                "triggered_message_clicked", "triggered_message_delivered", "triggered_message_read",
                "triggered_message_replied"]
            assert {e["properties"]["message_id"] for e in reports} == {card.message.id}

            await page.keyboard.press("Escape")
            chat = await do_send_proactive(rt, contact_id, "Your cart is waiting", display="chat")
            await expect(widget(page, ".panel")).to_be_visible()  # a chat message pops the chat open
            await expect(widget(page, ".msg:not(.mine)").last).to_contain_text("Your cart is waiting")
            reports = await events_of(site, token, contact_id, "triggered_message_", 6)
            assert {(e["name"], e["properties"]["message_id"]) for e in reports} >= {
                ("triggered_message_delivered", chat.message.id), ("triggered_message_read", chat.message.id)}
            # A second tab sees the same message again: still counted once.
            again = await page.context.new_page()
            await again.goto(site.http + "/demo/pricing")
            await expect(widget(again, ".launcher")).to_be_visible()
            await again.wait_for_timeout(500)
            reports = await events_of(site, token, contact_id, "triggered_message_delivered", 2)
            assert len(reports) == 2
        assert problems == []
    finally:
        await rt.bus.stop()
        await rt.db.dispose()


async def test_offline_mode_asks_for_an_email_and_no_channel_buttons_without_channels(site: ChatServer) -> None:
    token = await login(site)
    async with api(site, token) as http:
        assert (await http.post("/me/availability", json={"availability": "away"})).status_code == 200
    async with chromium() as browser:
        page = await open_page(browser, site)
        name = f"off-{uuid.uuid4().hex[:8]}"
        await page.evaluate("([n]) => ChatWidget.identify({name: n})", [name])
        await widget(page, ".launcher").click()
        notice = widget(page, ".notice")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("No one is online")
        await widget(page, ".notice input").fill("Visitor@Example.com")
        await widget(page, ".notice button").click()
        await expect(notice).to_contain_text("We will answer at visitor@example.com")
        await expect(widget(page, ".links")).to_be_hidden()
        await expect(widget(page, ".links a")).to_have_count(0)
        contact_id = await contact_id_named(site, token, name)
        async with api(site, token) as http:
            card = (await http.get(f"/contacts/{contact_id}")).json()
        assert card["contact"]["email"] == "visitor@example.com"
        assert all(i["kind"] != "email" for i in card["identities"])  # typed, not verified: joins nobody

        op = await operator(site, token)
        await op.send(type="presence", availability="online")
        await expect(widget(page, ".notice")).to_contain_text("We will answer at")  # thanks stay
        await op.close()


async def test_image_attachment_is_previewed_and_reaches_the_operator(site: ChatServer, tmp_path: Path) -> None:
    token = await login(site)
    op = await operator(site, token)
    image = tmp_path / "кот.png"
    image.write_bytes(PNG)
    async with chromium() as browser:
        page = await open_page(browser, site)
        await widget(page, ".launcher").click()
        await widget(page, "input[type=file]").set_input_files(str(image))
        preview = widget(page, ".msg.mine img")
        await expect(preview).to_have_attribute("alt", "кот.png")
        await expect(preview).to_have_attribute("src", re.compile(r"^blob:"))  # fetched with the visitor's token
        assert await preview.evaluate("img => img.complete && img.naturalWidth") == 2
        got = await op.expect("message", timeout=10)
        assert got["message"]["attachments"][0]["name"] == "кот.png"
        assert got["message"]["attachments"][0]["content_type"] == "image/png"
        bad = tmp_path / "page.html"
        bad.write_text("<script>alert(1)</script>")
        await widget(page, "input[type=file]").set_input_files(str(bad))
        await expect(widget(page, ".err")).to_contain_text("cannot be sent")
    await op.close()


async def test_russian_texts_phone_screen_and_isolation_from_the_site(site: ChatServer) -> None:
    async with chromium() as browser:
        page = await open_page(browser, site, locale="ru-RU", viewport={"width": 375, "height": 667})
        await page.add_style_tag(content=(
            "* { color: red !important; font-size: 40px !important; background: lime !important; }"
            " button { display: none !important; } div { position: static !important; }"))
        launcher = widget(page, ".launcher")
        await expect(launcher).to_have_attribute("aria-label", "Открыть чат")
        await expect(launcher).to_be_visible()
        assert await launcher.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(37, 99, 235)"
        await launcher.focus()
        await page.keyboard.press("Enter")
        panel = widget(page, ".panel")
        await expect(panel).to_be_visible()
        await expect(widget(page, "textarea")).to_have_attribute("placeholder", "Напишите сообщение…")
        await expect(widget(page, "textarea")).to_be_focused()
        box = await panel.bounding_box()
        assert box is not None and box["width"] == 375 and box["height"] == 667  # full screen on a phone
        assert await widget(page, "textarea").evaluate("t => getComputedStyle(t).fontSize") == "14px"
        # Our styles stay inside: the site's own buttons keep the site's look.
        assert await page.evaluate("getComputedStyle(document.querySelector('nav a')).color") == "rgb(255, 0, 0)"
        assert await page.evaluate("document.querySelectorAll('style').length") == 1  # only the site's


async def test_shutdown_forgets_the_visitor_in_every_tab(site: ChatServer) -> None:
    token_of = "() => localStorage[Object.keys(localStorage).find((k) => k.endsWith(':token'))]"
    async with chromium() as browser:
        page = await open_page(browser, site)
        await widget(page, ".launcher").click()
        await widget(page, "textarea").fill("my private question")
        await widget(page, "textarea").press("Enter")
        await expect(widget(page, ".msg.mine .meta")).to_contain_text("Delivered")
        other = await page.context.new_page()
        await other.goto(site.http + "/demo/pricing")
        await widget(other, ".launcher").click()
        await expect(widget(other, ".log")).to_contain_text("my private question")
        old = await page.evaluate(token_of)

        await page.evaluate("ChatWidget.shutdown()")
        await page.wait_for_function(f"([old]) => ({token_of})() && ({token_of})() !== old", arg=[old])
        # The server forgot the old token too: a copy of it reads nothing any more.
        async with httpx.AsyncClient(base_url=site.http) as http:
            async def refused() -> bool | None:
                r = await http.get("/api/v1/widget/channel-links", headers={"Authorization": f"Visitor {old}"})
                return True if r.status_code == 401 else None
            assert await eventually(refused, what="the old visitor token revoked")
        for tab in (page, other):
            await expect(widget(tab, ".panel")).to_be_hidden()
            await widget(tab, ".launcher").click()
            await expect(widget(tab, ".log .msg"), tab.url).to_have_count(0)
        await widget(other, "textarea").fill("a new visitor")
        await widget(other, "textarea").press("Enter")
        await expect(widget(page, ".log .text")).to_have_text(["a new visitor"])  # the tabs still share one


@contextlib.contextmanager
def shop_server(docroot: Path) -> Iterator[str]:
    """Another site on loopback (another port, so another origin) serving the shop's pages."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(docroot), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


async def test_embedded_on_another_origin_needs_the_site_origin_and_works_across_origins(
    site: ChatServer, tmp_path: Path
) -> None:
    """The site's page comes from one origin, the widget from the chat server: module import,
    config, uploads (CORS preflight with the visitor token) and the socket's Origin check."""
    token = await login(site)
    async with api(site, token) as http_api:
        key = (await http_api.get("/site")).json()["site_key"]
    docroot = tmp_path / "shop"
    docroot.mkdir()
    (docroot / "shop.html").write_text(
        '<!doctype html><html><head><title>Shop</title><link rel="icon" href="data:,"></head><body><h1>Shop</h1>'
        f'<script src="{site.http}/widget.js" data-site="{key}" async></script></body></html>')
    image = tmp_path / "photo.png"
    image.write_bytes(PNG)
    problems: list[str] = []
    refused: list[str] = []
    with shop_server(docroot) as shop:
        async with chromium() as browser:
            page = await browser.new_page()
            page.on("websocket", lambda ws: ws.on("framereceived", lambda data: refused.append(str(data))))
            await page.goto(shop + "/shop.html")
            await page.wait_for_function("() => window.ChatWidget && window.ChatWidget.version")
            for _ in range(50):
                if any("origin_not_allowed" in frame for frame in refused):
                    break
                await asyncio.sleep(0.1)
            assert any("origin_not_allowed" in frame for frame in refused)  # not yet one of the site's origins
            async with api(site, token) as http_api:
                assert (await http_api.patch("/site", json={"allowed_origins": [shop]})).status_code == 200
            try:
                watch_console(page, problems)
                await page.reload()
                name = f"embed-{uuid.uuid4().hex[:8]}"
                merged = await page.evaluate("([n]) => ChatWidget.identify({name: n}).then((r) => r.merged)", [name])
                assert merged is False
                await widget(page, ".launcher").click()
                await widget(page, "textarea").fill("hello from the shop")
                await widget(page, "textarea").press("Enter")
                await expect(widget(page, ".msg.mine .meta")).to_contain_text("Delivered")
                await widget(page, "input[type=file]").set_input_files(str(image))
                await expect(widget(page, ".msg.mine img")).to_have_attribute("src", re.compile(r"^blob:"))
                contact_id = await contact_id_named(site, token, name)
                async with api(site, token) as http_api:
                    card = (await http_api.get(f"/contacts/{contact_id}")).json()
                assert card["contact"]["first_landing_page"] == shop + "/shop.html"
                assert [e["url"] for e in card["events"] if e["name"] == "page_viewed"] == [shop + "/shop.html"]
            finally:
                async with api(site, token) as http_api:
                    await http_api.patch("/site", json={"allowed_origins": []})
    assert problems == []
