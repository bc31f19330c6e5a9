"""The inbox list an operator works from, in real headless Chromium: what each conversation
says (its last message, unread count, waiting time), live; the card's properties as text; and
an operator who logs in taking the widget out of its offline mode."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import update
from sqlmodel import col

from chat_server.db import Database
from chat_server.models import Message
from chat_server.models.types import utcnow
from tests.browser import watch_console, widget
from tests.harness import ChatServer, Socket, api, create_operator, embedded_server, login, visitor
from tests.inbox_browser import browser, open_inbox  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    yield from embedded_server(tmp_path_factory, "inbox-list")


def cid() -> str:
    return uuid.uuid4().hex


async def write(server: ChatServer, token: str, v: Socket, text: str) -> int:
    """The visitor writes; returns their conversation's id."""
    await v.send(type="message.send", client_msg_id=cid(), text=text)
    ack = await v.expect("ack")
    own = [f for f in v.seen if f["type"] == "message" and f["message"]["seq"] == ack["seq"]]
    contact_id = (own[0] if own else await v.expect("message", seq=ack["seq"]))["message"]["author"]["id"]
    async with api(server, token) as http:
        return int((await http.get(f"/contacts/{contact_id}")).json()["conversation"]["id"])


async def test_the_list_shows_previews_unread_counts_and_waiting_times_live(
        server: ChatServer, browser: Browser) -> None:  # noqa: F811
    token = await login(server)
    inbox = await open_inbox(browser, server)
    page = inbox.page

    # A visitor writes two lines: the first line is the preview, one unread, waiting.
    a, _ = await visitor(server)
    a_conv = await write(server, token, a, "My order has not arrived\nIt was #1042")
    item = page.locator(f".conversation[data-id='{a_conv}']")
    await expect(item.locator(".preview")).to_have_text("My order has not arrived")
    await expect(item.locator(".unread-count")).to_have_text("1")
    await expect(item.locator(".waiting")).to_have_text("waiting less than a minute")
    await expect(page.locator(".tabs button[data-tab=open] .tab-count")).to_have_text("1")
    await expect(page).to_have_title("(1) Inbox")

    # More words, and another visitor: the counts follow without a reload.
    await a.send(type="message.send", client_msg_id=cid(), text="Hello?")
    await expect(item.locator(".unread-count")).to_have_text("2")
    await expect(item.locator(".preview")).to_have_text("Hello?")
    b, _ = await visitor(server)
    b_conv = await write(server, token, b, "Do you ship to Riga?")
    await expect(page.locator(f".conversation[data-id='{b_conv}'] .preview")).to_have_text("Do you ship to Riga?")
    await expect(page).to_have_title("(2) Inbox")
    await expect(page.locator(".tabs button[data-tab=unassigned] .tab-count")).to_have_text("2")
    await expect(page.locator(".tabs button[data-tab=mine] .tab-count")).to_be_hidden()

    # Reading the thread clears its count; the title and the tab follow.
    await item.click()
    await expect(item.locator(".unread-count")).to_have_count(0)
    await expect(page).to_have_title("(1) Inbox")
    await expect(page.locator(".tabs button[data-tab=open] .tab-count")).to_have_text("1")

    # Our reply: "You: …", and the contact no longer waits. A note shows its marker.
    composer = page.locator(".composer textarea")
    await composer.fill("Let me check the courier")
    await composer.press("Enter")
    await expect(item.locator(".preview")).to_have_text("You: Let me check the courier")
    await expect(item.locator(".waiting")).to_have_count(0)
    await page.click(".composer .mode:has-text('Note')")
    await composer.fill("Courier says Friday")
    await composer.press("Enter")
    await expect(item.locator(".preview .note-mark")).to_have_text("Note")
    await expect(item.locator(".preview .text")).to_have_text("Courier says Friday")

    # The visitor writes again while the thread is open: read at once, waiting again.
    await a.send(type="message.send", client_msg_id=cid(), text="Thanks, and the invoice?")
    await expect(item.locator(".preview")).to_have_text("Thanks, and the invoice?")
    await expect(item.locator(".waiting")).to_have_text("waiting less than a minute")
    await expect(item.locator(".unread-count")).to_have_count(0)

    # Someone who has waited long is highlighted, and says for how long.
    db = Database(server.database_url)
    try:
        async with db.write() as s:
            await s.exec(update(Message).where(col(Message.conversation_id) == b_conv)  # type: ignore[call-overload]
                         .values(created_at=utcnow() - timedelta(minutes=25)))
    finally:
        await db.dispose()
    await page.click(".tabs button[data-tab=unassigned]")
    waiting = page.locator(f".conversation[data-id='{b_conv}'] .waiting")
    await expect(waiting).to_have_text("waiting 25 min")
    await expect(waiting).to_have_class(re.compile(r"\blong\b"))

    assert inbox.js_errors() == [], inbox.js_errors()
    for sock in (a, b):
        await sock.close()
    await inbox.close()


async def test_the_list_in_russian_counts_with_plural_forms(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    inbox = await open_inbox(browser, server)
    page = inbox.page
    await page.select_option("#language", "ru")
    await expect(page.locator(".tabs button[data-tab=open] .tab-label")).to_have_text("Открытые")
    v, _ = await visitor(server)
    for text in ("Здравствуйте", "Есть кто?", "Алло"):
        await v.send(type="message.send", client_msg_id=cid(), text=text)
        await v.expect("ack")
    item = page.locator(".conversation", has_text="Алло")
    await expect(item.locator(".unread-count")).to_have_text("3")
    await expect(item.locator(".unread-count")).to_have_attribute("title", "3 непрочитанных сообщения")
    await expect(item.locator(".waiting")).to_have_text("ждёт меньше минуты")
    await page.select_option("#language", "en")
    await expect(item.locator(".unread-count")).to_have_attribute("title", "3 unread messages")
    assert inbox.js_errors() == [], inbox.js_errors()
    await v.close()
    await inbox.close()


async def test_card_properties_read_as_text_and_links(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    token = await login(server)
    v, _ = await visitor(server)
    await v.send(type="track", name="page_viewed", properties={"title": "Pricing plans"},
                 url="https://shop.example/pricing?utm_source=ads&utm_medium=cpc&utm_campaign=spring")
    conv = await write(server, token, v, "Which plan?")
    inbox = await open_inbox(browser, server)
    page = inbox.page
    await page.goto(f"{server.http}/inbox/#/c/{conv}")
    props = page.locator(".card .properties")
    last_page = props.locator("tr", has=page.locator("th", has_text="last_page"))
    await expect(last_page.locator("a")).to_have_text("Pricing plans")
    assert await last_page.locator("a").get_attribute("href") == \
        "https://shop.example/pricing?utm_source=ads&utm_medium=cpc&utm_campaign=spring"
    last_utm = props.locator("tr", has=page.locator("th", has_text="last_utm"))
    for line in ("source: ads", "medium: cpc", "campaign: spring"):
        await expect(last_utm).to_contain_text(line)
    assert "{" not in await props.inner_text()  # never raw JSON
    assert inbox.js_errors() == [], inbox.js_errors()
    await v.close()
    await inbox.close()


async def open_widget(browser: Browser, server: ChatServer, problems: list[str]) -> Page:  # noqa: F811
    ctx = await browser.new_context()
    page = await ctx.new_page()
    watch_console(page, problems)
    await page.goto(server.http + "/demo/")
    await page.wait_for_function("() => window.ChatWidget && window.ChatWidget.version")
    return page


async def test_logging_in_takes_the_widget_out_of_its_offline_mode(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin = await login(server)
    email = f"lena-{cid()[:6]}@example.com"
    # Lena keeps the default: logging in makes her online. (create_operator logs her in once.)
    lena = await create_operator(server, admin, email, name="Lena", availability_on_login="online")
    async with api(server, lena) as http:
        assert (await http.get("/me")).json()["availability_on_login"] == "online"
        assert (await http.post("/me/availability", json={"availability": "away"})).status_code == 200
        assert (await http.patch("/me", json={"availability_on_login": "sometimes"})).status_code == 422

    problems: list[str] = []
    page = await open_widget(browser, server, problems)
    await widget(page, ".launcher").click()
    notice = widget(page, ".notice")
    await expect(notice).to_contain_text("No one is online")

    inbox = await open_inbox(browser, server, email=email, password="password-" + email)
    await expect(notice).to_be_hidden()  # someone is there to answer now
    await expect(inbox.page.locator("#availability")).to_have_value("online")
    await expect(inbox.page.locator("#online-on-login")).to_be_checked()

    # Logging out goes away; with "keep my last state" the next login stays away.
    await inbox.page.click("#logout")
    await expect(inbox.page.locator("#login-form")).to_be_visible()
    await expect(notice).to_contain_text("No one is online")
    await inbox.login(email, "password-" + email)
    await expect(inbox.page.locator("#availability")).to_have_value("online")
    await expect(notice).to_be_hidden()
    await inbox.page.locator("#online-on-login").uncheck()
    async with api(server, lena) as http:
        me = (await http.get("/me")).json()
        assert me["availability_on_login"] == "last"
    await inbox.page.select_option("#availability", "away")
    await expect(notice).to_contain_text("No one is online")
    await inbox.page.click("#logout")
    await expect(inbox.page.locator("#login-form")).to_be_visible()
    await inbox.login(email, "password-" + email)
    await expect(inbox.page.locator("#availability")).to_have_value("away")
    await expect(inbox.page.locator("#online-on-login")).not_to_be_checked()
    await expect(notice).to_contain_text("No one is online")
    assert problems == [] and inbox.js_errors() == [], problems + inbox.js_errors()
    await inbox.close()
