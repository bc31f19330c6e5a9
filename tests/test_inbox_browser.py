"""The operator inbox in real headless Chromium; visitors are real widget sockets."""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.harness import ChatServer, api, create_operator, embedded_server, login, visitor
from tests.inbox_browser import Inbox, browser, open_inbox  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    yield from embedded_server(tmp_path_factory, "browser")


def cid() -> str:
    return uuid.uuid4().hex


HOSTILE = 'Hi <b>bold</b> <img src=x onerror="window.__xss=1"> & <script>window.__xss=2</script>'


async def test_operator_sees_a_new_conversation_live_replies_and_notes_stay_private(
        server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin_token = await login(server)
    shortcut = "thanks" + cid()[:4]
    async with api(server, admin_token) as http:
        r = await http.post("/saved-replies", json={"shortcut": shortcut, "text": "Thank you for writing to us!"})
        assert r.status_code == 201
    inbox = await open_inbox(browser, server)
    page = inbox.page
    await page.select_option("#availability", "away")

    v, welcome = await visitor(server, page={"url": "https://shop.example/?utm_source=ads&utm_campaign=spring",
                                             "referrer": "https://search.example/"})
    for _ in range(2):
        await v.send(type="track", name="Page viewed", properties={}, url="https://shop.example/pricing")
    await v.send(type="message.send", client_msg_id=cid(), text=HOSTILE)
    await v.expect("ack")

    # Going online in the inbox takes the widget out of its offline mode.
    await page.select_option("#availability", "online")
    presence = await v.expect("presence")
    assert presence["operators_online"] is True

    # It appears in the list without a reload, unread.
    item = page.locator(".conversation.unread", has_text="Visitor #")
    await expect(item.first).to_be_visible()
    await item.first.click()
    text = page.locator(".msg.in .text").last
    await expect(text).to_have_text(HOSTILE)  # shown as text, exactly as typed
    assert await page.locator(".messages b, .messages img, .messages script").count() == 0
    assert await page.evaluate("window.__xss") is None

    # The card: UTM tags and pages viewed.
    card = page.locator(".card")
    await expect(card.locator(".utm")).to_contain_text("source: ads")
    await expect(card.locator(".utm")).to_contain_text("campaign: spring")
    await expect(card.locator(".event", has_text="Page viewed")).to_have_count(2)
    await expect(card.locator(".event .url").first).to_have_text("https://shop.example/pricing")

    # Reply with Enter; the visitor gets it, and saw us typing first. A web visitor can only be
    # answered on the web chat.
    assert await page.locator(".composer select.channel option").evaluate_all("os => os.map(o => o.value)") == ["widget"]
    composer = page.locator(".composer textarea")
    await composer.fill("Hello! How can I help?")
    await composer.type(" ")
    typing = await v.expect("typing")
    assert typing["author"]["type"] == "operator" and typing["is_typing"] is True
    await composer.press("Enter")
    reply = await v.expect("message", text="Hello! How can I help? ")
    assert reply["message"]["direction"] == "outbound"
    await expect(page.locator(".msg.out .text", has_text="How can I help")).to_be_visible()
    await expect(page.locator(".msg.out .state").last).to_have_text("sent")
    await v.send(type="receipt", state="read", seq=reply["message"]["seq"])
    await expect(page.locator(".msg.out .state").last).to_have_text("read")

    # Shift+Enter makes a new line, not a send.
    await composer.type("line one")
    await composer.press("Shift+Enter")
    await composer.type("line two")
    assert await composer.input_value() == "line one\nline two"
    await composer.press("Enter")
    await v.expect("message", text="line one\nline two")

    # A private note is shown apart and never reaches the visitor.
    await page.click(".composer .mode:has-text('Private note')")
    await composer.fill("secret: VIP, offer 20%")
    await composer.press("Enter")
    await expect(page.locator(".msg.note .text")).to_have_text("secret: VIP, offer 20%")

    # A saved reply inserted with "/".
    await page.click(".composer .mode:has-text('Reply')")
    await composer.fill("")
    await composer.type("/" + shortcut[:5])
    await expect(page.locator(".suggestions li").first).to_contain_text("Thank you for writing")
    await composer.press("Enter")
    assert await composer.input_value() == "Thank you for writing to us!"
    await composer.press("Enter")
    await v.expect("message", text="Thank you for writing to us!")

    # An attachment: uploaded, sent with the reply, shown in the thread, received by the visitor.
    await page.set_input_files(".composer .file-input", files=[
        {"name": "chart.png", "mimeType": "image/png", "buffer": tiny_png()}])
    await expect(page.locator(".pending-files li.file")).to_contain_text("chart.png")
    await composer.fill("See the chart")
    await composer.press("Enter")
    got = await v.expect("message", text="See the chart")
    assert [(a["name"], a["content_type"]) for a in got["message"]["attachments"]] == [("chart.png", "image/png")]
    preview = page.locator(".msg.out .attachments img.preview").last
    await expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
    assert await preview.evaluate("img => img.complete && img.naturalWidth") == 1
    await expect(page.locator(".pending-files li")).to_have_count(0)

    assert not any("secret" in str(f) for f in v.seen + await v.settled())
    assert inbox.js_errors() == [], inbox.js_errors()
    await v.close()
    await inbox.close()


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + \
        chunk(b"IEND", b"")


async def test_assignment_by_one_operator_appears_live_for_another(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin_token = await login(server)
    email = f"olga-{cid()[:6]}@example.com"
    await create_operator(server, admin_token, email, name="Olga")
    v, _ = await visitor(server)
    await v.send(type="message.send", client_msg_id=cid(), text="Who will help me?")
    ack = await v.expect("ack")
    own = [f for f in v.seen if f["type"] == "message" and f["message"]["seq"] == ack["seq"]]
    contact_id = (own[0] if own else await v.expect("message"))["message"]["author"]["id"]
    async with api(server, admin_token) as http:
        conversation_id = (await http.get(f"/contacts/{contact_id}")).json()["conversation"]["id"]
        olga_id = next(o["id"] for o in (await http.get("/operators")).json()["items"] if o["email"] == email)

    first = await open_inbox(browser, server)
    second = await open_inbox(browser, server, email=email, password="password-" + email)
    await second.page.click(".tabs button[data-tab=mine]")
    await first.page.goto(f"{server.http}/inbox/#/c/{conversation_id}")
    await first.page.wait_for_selector(".thread-head .assign")
    await first.page.select_option(".thread-head .assign", str(olga_id))

    mine = second.page.locator(f".conversation[data-id='{conversation_id}']")
    await expect(mine).to_be_visible()  # live, in Olga's "Mine" tab
    await mine.click()
    await expect(second.page.locator(".thread-head .assign")).to_have_value(str(olga_id))
    await expect(second.page.locator(".msg.system").last).to_contain_text("assigned the conversation to Olga")
    # And back: Olga closes it; the first operator sees it closed, live.
    await second.page.click(".thread-head button.close")
    await expect(first.page.locator(".thread-head .status")).to_have_text("closed")
    await expect(first.page.locator(".msg.system").last).to_contain_text("Olga closed the conversation")
    # Snoozed for an hour by Olga, seen by the first operator.
    await second.page.click(".thread-head button.reopen")
    await second.page.click(".thread-head .snooze button:has-text('1h')")
    await expect(first.page.locator(".thread-head .status")).to_contain_text("snoozed until")
    # Keyboard: "c" reopens, "a" takes it.
    await first.page.locator(".thread-scroll").click()
    await first.page.keyboard.press("c")
    await expect(second.page.locator(".thread-head .status")).to_have_text("open")
    await first.page.keyboard.press("a")
    await expect(second.page.locator(".msg.system").last).to_contain_text("Admin assigned the conversation to Admin")
    assert first.js_errors() + second.js_errors() == [], first.js_errors() + second.js_errors()
    await v.close()
    await first.close()
    await second.close()


async def test_sales_reads_any_history_but_cannot_reply(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin_token = await login(server)
    email = f"sam-{cid()[:6]}@example.com"
    await create_operator(server, admin_token, email, role="sales", name="Sam")
    v, _ = await visitor(server)
    await v.send(type="message.send", client_msg_id=cid(), text="Do you have a discount for 50 seats?")
    ack = await v.expect("ack")
    own = [f for f in v.seen if f["type"] == "message" and f["message"]["seq"] == ack["seq"]]
    contact_id = (own[0] if own else await v.expect("message"))["message"]["author"]["id"]
    async with api(server, admin_token) as http:
        conversation_id = (await http.get(f"/contacts/{contact_id}")).json()["conversation"]["id"]
        await http.post(f"/conversations/{conversation_id}/messages", json={"text": "Yes: 15% off."})
        await http.patch(f"/contacts/{contact_id}", json={"name": "Big Buyer"})
        # A long history: the page shows the latest 50 and scrolls back to the first message.
        for i in range(60):
            await http.post(f"/conversations/{conversation_id}/notes", json={"text": f"call log {i}"})
    from tests.seed import append_messages

    # Telegram messages in the same thread, one reply that failed, attachments (one with a bad URL).
    await append_messages(server.database_url, conversation_id, [
        {"channel": "telegram", "direction": "inbound", "author_type": "contact", "text": "Here is the spec",
         "attachments": [{"id": "a1", "name": "spec <1>.pdf", "content_type": "application/pdf", "size": 2048,
                          "url": "/files/a1/spec.pdf"},
                         {"id": "a2", "name": "evil", "content_type": "text/html", "size": 1,
                          "url": "javascript:alert(1)"}]},
        {"channel": "telegram", "direction": "outbound", "author_type": "operator", "author_name": "Admin",
         "text": "Thanks, reading it", "delivery_state": "failed", "delivery_error": "Forbidden: bot was blocked by the user"},
    ])

    sales = await open_inbox(browser, server, email=email, password="password-" + email)
    page = sales.page
    assert await page.locator("nav a[data-page=admin]").is_hidden()
    await page.click("nav a[data-page=contacts]")
    await page.fill(".contacts-page input[type=search]", "Big Buyer")
    row = page.locator(f".contact-row[data-id='{contact_id}']")
    await expect(row).to_be_visible()
    await row.click()
    messages = page.locator(".contact-page .msg .text")
    await expect(messages.last).to_have_text("Thanks, reading it")
    failed = page.locator(".contact-page .msg.out").last
    await expect(failed.locator(".badge")).to_have_text("Telegram")
    await expect(failed.locator(".state.failed")).to_have_text("failed: Forbidden: bot was blocked by the user")
    files = page.locator(".contact-page .msg.in").last.locator(".attachments li")
    await expect(files.first.locator("a")).to_have_text("spec <1>.pdf (2.0 KB)")
    assert await files.first.locator("a").get_attribute("href") == "/files/a1/spec.pdf"
    assert await files.nth(1).locator("a").count() == 0  # a javascript: URL is never a link
    await expect(messages).to_have_count(50)
    await page.locator(".contact-page .thread-scroll").evaluate("el => { el.scrollTop = 0; }")
    await expect(messages).to_have_count(64)
    await expect(messages.first).to_have_text("Do you have a discount for 50 seats?")
    await expect(messages.nth(1)).to_have_text("Yes: 15% off.")
    await expect(page.locator(".card .contact-name")).to_have_text("Big Buyer")
    assert await page.locator(".card .edit-contact, .card .merge-form, .card .add-property").count() == 0

    # In the inbox the thread is there, but nothing to write or change with.
    await page.goto(f"{server.http}/inbox/#/c/{conversation_id}")
    await expect(page.locator(".read-only")).to_be_visible()
    await expect(page.locator(".thread-pane .msg.note .text").last).to_have_text("call log 59")
    await expect(page.locator(".thread-pane .msg.out .text").last).to_have_text("Thanks, reading it")
    assert await page.locator(".composer textarea, .thread-head select, .thread-head button").count() == 0
    assert sales.js_errors() == [], sales.js_errors()
    # And the API refuses a reply sent from this browser anyway.
    status = await page.evaluate(
        """async (id) => (await fetch(`/api/v1/conversations/${id}/messages`, {method: "POST",
            headers: {"content-type": "application/json", authorization: `Bearer ${localStorage.getItem("inbox.token")}`},
            body: JSON.stringify({text: "sneaky"})})).status""", conversation_id)
    assert status == 403
    assert [f for f in await v.settled() if f["type"] == "message" and "sneaky" in f["message"]["text"]] == []
    # Logging out ends the session: the token no longer works.
    token = await sales.token()
    await page.click("#logout")
    await expect(page.locator("#login-form")).to_be_visible()
    async with api(server, token) as http:
        assert (await http.get("/me")).status_code == 401
    await v.close()
    await sales.close()


async def test_contacts_filter_lists_exactly_the_matching_contacts_and_exports_them(
        server: ChatServer, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    from tests.seed import seed_contacts

    wanted = await seed_contacts(server.database_url, [
        ("ann@example.com", 2, True), ("bob@example.com", 1, False), (None, 3, False),
        ("dee@example.com", 4, True), ("", 2, False),
    ])
    inbox = await open_inbox(browser, server)
    page = inbox.page
    await page.click("nav a[data-page=contacts]")
    await page.click(".columns summary")
    await page.check(".columns label:has-text('Id') input")
    await page.fill(".add-column input[name=key]", "plan")
    await page.click(".add-column button")
    await page.click(".add-condition")  # email is set (the default)
    await page.click(".add-condition")
    second = page.locator(".condition").nth(1)
    await second.locator("select[name=kind]").select_option("event")
    await second.locator("input[name=name]").fill("Page viewed")
    await second.locator("input[name=name]").dispatch_event("change")
    await second.locator("input[name=count]").fill("2")
    await second.locator("input[name=count]").dispatch_event("change")
    await page.locator(".condition").nth(1).locator("input[name=url_contains]").fill("/pricing")
    await page.locator(".condition").nth(1).locator("input[name=url_contains]").dispatch_event("change")
    await page.click(".filter .apply")
    rows = page.locator(".contact-row")
    await expect(rows).to_have_count(len(wanted))
    shown = {int(x) for x in await rows.evaluate_all("rs => rs.map(r => r.dataset.id)")}
    assert shown == set(wanted)
    await expect(page.locator(".contacts-table thead th").last).to_have_text("plan")
    assert sorted(await page.locator(".contact-row td:last-child").all_text_contents()) == ["plan 2", "plan 4"]

    async with page.expect_download() as download_info:
        await page.click(".export")
    download = await download_info.value
    path = tmp_path / "contacts.csv"
    await download.save_as(path)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    ids = {int(line.split(",")[header.index("id")]) for line in lines[1:]}
    assert ids == set(wanted)
    assert header[-1] == "property:plan"
    assert sorted(line.split(",")[-1] for line in lines[1:]) == ["plan 2", "plan 4"]
    assert inbox.js_errors() == [], inbox.js_errors()
    await inbox.close()


async def test_report_shows_the_first_response_time_of_the_seed(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    from tests.seed import seed_report

    admin_token = await login(server)
    async with api(server, admin_token) as http:
        admin_id = (await http.get("/me")).json()["id"]
    # (first inbound minute, first reply minute) per conversation, 2022-05-10 UTC
    waits = [(0, 4), (30, 31), (100, 125), (200, 209)]
    await seed_report(server.database_url, "2022-05-10", waits, admin_id)
    seconds = sorted(60.0 * (reply - start) for start, reply in waits)
    median = (seconds[1] + seconds[2]) / 2  # four values: the mean of the middle two
    p90 = seconds[3]  # nearest rank: ceil(0.9 * 4) = 4th

    inbox = await open_inbox(browser, server)
    page = inbox.page
    await page.click("nav a[data-page=reports]")
    await page.fill(".reports-page input[name=start]", "2022-05-10")
    await page.fill(".reports-page input[name=end]", "2022-05-11")
    await page.click(".reports-page button[type=submit]")
    everyone = page.locator(".times").first.locator("tr[data-row=all]")
    await expect(everyone.locator(".count")).to_have_text("4")
    assert float(await everyone.locator("td.median").get_attribute("data-seconds") or "nan") == median
    assert float(await everyone.locator("td.p90").get_attribute("data-seconds") or "nan") == p90
    await expect(everyone.locator("td.median")).to_have_text("6m 30s")
    await expect(page.locator(".chart rect")).to_have_count(1)
    assert inbox.js_errors() == [], inbox.js_errors()
    await inbox.close()


async def test_admin_invites_changes_role_deactivates_and_keeps_saved_replies(
        server: ChatServer, browser: Browser) -> None:  # noqa: F811
    inbox = await open_inbox(browser, server)
    page = inbox.page
    await page.click("nav a[data-page=admin]")
    email = f"nina-{cid()[:6]}@example.com"
    invite = page.locator("form.invite")
    await invite.locator("input[name=name]").fill("Nina")
    await invite.locator("input[name=email]").fill(email)
    await invite.locator("input[name=password]").fill("a long password")
    await invite.locator("select[name=role]").select_option("sales")
    await invite.locator("button[type=submit]").click()
    row = page.locator(".team tr", has_text=email)
    await expect(row.locator("select")).to_have_value("sales")
    await row.locator("select").select_option("operator")
    await expect(page.locator(".team tr", has_text=email).locator("select")).to_have_value("operator")
    await page.locator(".team tr", has_text=email).locator("button", has_text="Deactivate").click()
    await expect(page.locator(".team tr", has_text=email)).to_contain_text("deactivated")
    async with api(server) as http:
        r = await http.post("/auth/login", json={"email": email, "password": "a long password"})
        assert r.status_code == 400  # deactivated: no way in

    shortcut = "bye" + cid()[:4]
    form = page.locator("form.add-reply")
    await form.locator("input[name=shortcut]").fill(shortcut)
    await form.locator("textarea[name=text]").fill("Goodbye & thanks <3")
    await form.locator("button[type=submit]").click()
    await expect(page.locator(".replies tr", has_text=f"/{shortcut}").locator("textarea")).to_have_value("Goodbye & thanks <3")
    async with api(server, await inbox.token()) as http:
        items = (await http.get("/saved-replies")).json()["items"]
    assert {"shortcut": shortcut, "text": "Goodbye & thanks <3"}.items() <= next(
        i for i in items if i["shortcut"] == shortcut).items()

    # Site and widget settings: origins, identity secret, colour, a text.
    site = page.locator(".site-settings")
    await expect(site.locator(".snippet")).to_contain_text("data-site=")
    key = await site.locator(".site-key").text_content()
    form = site.locator("form.site-form")
    await form.locator("textarea[name=allowed_origins]").fill("https://shop.example\nhttps://www.shop.example")
    await form.locator("input[name=identity_secret]").fill("s3cret-for-hmac-0123456789")
    await form.locator("input[name=color]").fill("#ff5500")
    await form.locator("summary").click()
    await form.locator("input[name='text:en:title']").fill("Talk to <Shop>")
    await form.locator("button[type=submit]").click()
    await expect(site.locator("input[name=identity_secret]")).to_have_attribute("placeholder", re.compile("^set"))
    async with api(server, await inbox.token()) as http:
        settings = (await http.get("/site")).json()
    assert settings["allowed_origins"] == ["https://shop.example", "https://www.shop.example"]
    assert settings["identity_secret_set"] is True and settings["color"].lower() == "#ff5500"
    assert settings["texts"]["en"]["title"] == "Talk to <Shop>" and settings["site_key"] == key
    assert inbox.js_errors() == [], inbox.js_errors()
    await inbox.close()


async def test_the_inbox_in_russian_end_to_end_and_back_to_english(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    from tests.seed import seed_report

    admin_token = await login(server)
    email = f"olga-{cid()[:6]}@example.com"
    token = await create_operator(server, admin_token, email, name="Ольга")
    async with api(server, token) as http:
        olga = (await http.patch("/me", json={"language": "ru"})).json()
    assert olga["language"] == "ru"
    await seed_report(server.database_url, "2021-03-02", [(0, 2), (10, 13)], olga["id"])
    word = "i18n" + cid()[:8]
    visitors = []
    for text in (f"Здравствуйте, {word}x", f"Hello {word}"):
        v, _ = await visitor(server)
        await v.send(type="message.send", client_msg_id=cid(), text=text)
        await v.expect("ack")
        visitors.append(v)

    # The browser asks for English; Olga's profile says Russian, and the profile wins.
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    inbox = Inbox(context, page, server)
    await page.goto(server.http + "/inbox/")
    await expect(page.locator("#login-form button[type=submit]")).to_have_text("Log in")
    await inbox.login(email, "password-" + email)
    await expect(page.locator("html")).to_have_attribute("lang", "ru")
    await expect(page.locator("nav a[data-page=inbox]")).to_have_text("Входящие")
    await expect(page.locator("nav a[data-page=reports]")).to_have_text("Отчёты")
    await expect(page.locator("#logout")).to_have_text("Выйти")
    await expect(page.locator("#connection")).to_have_text("● на связи")
    await expect(page.locator("#me")).to_have_text("Ольга (оператор)")
    await expect(page.locator("#language")).to_have_value("ru")

    # The list: tabs, search, plural count, a visitor's name.
    await expect(page.locator(".tabs button[data-tab=unassigned] .tab-label")).to_have_text("Без исполнителя")
    await expect(page.locator(".thread-pane")).to_have_text("Выберите диалог.")
    await page.fill(".list-pane input[type=search]", word)
    await expect(page.locator(".conversation")).to_have_count(2)
    await expect(page.locator(".list-count")).to_have_text("2 диалога")
    first = page.locator(".conversation").first
    await expect(first).to_contain_text("Посетитель №")
    await expect(first).to_contain_text("без исполнителя")
    await expect(first.locator(".badge")).to_have_text("Сайт")
    await page.fill(".list-pane input[type=search]", word + "x")
    await expect(page.locator(".list-count")).to_have_text("1 диалог")

    # The thread: actions, assignment and its system line, composer, a reply's delivery state.
    await page.locator(".conversation").first.click()
    await expect(page.locator(".msg.in .text")).to_have_text(f"Здравствуйте, {word}x")
    await expect(page.locator(".thread-head .status")).to_have_text("открыт")
    await expect(page.locator(".thread-head button.close")).to_have_text("Закрыть")
    await page.locator(".thread-head select.assign").select_option(label="Ольга (я)")
    await expect(page.locator(".msg.system .text")).to_have_text("Ольга назначил(а) диалог на Ольга")
    await expect(page.locator(".composer .mode").first).to_have_text("Ответ")
    await expect(page.locator(".composer textarea")).to_have_attribute("placeholder", "Напишите ответ… (/ — шаблоны ответов)")
    await expect(page.locator(".composer select.channel option")).to_have_text(["Чат на сайте"])
    await page.fill(".composer textarea", "Добрый день!")
    await page.press(".composer textarea", "Enter")
    await expect(page.locator(".msg.out .state").last).to_have_text("отправлено")

    # The card.
    card = page.locator(".card")
    await expect(card.locator(".behaviour-summary h3")).to_have_text("Баллы и сегменты")
    await expect(card.locator("h3", has_text="Идентификаторы")).to_be_visible()
    await expect(card.locator(".identities b").first).to_have_text("Посетитель сайта")
    await expect(card.locator("h3", has_text="Откуда пришёл")).to_be_visible()
    await expect(card.locator(".facts th", has_text="Визиты")).to_be_visible()
    await expect(card.locator(".events")).to_have_text("Событий нет.")

    # The reports: a Russian date, plural forms, durations.
    await page.click("nav a[data-page=reports]")
    await expect(page.locator(".reports-page h2")).to_have_text("Отчёты")
    await page.fill(".reports-page input[name=start]", "2021-03-02")
    await page.fill(".reports-page input[name=end]", "2021-03-02")
    await page.click(".reports-page button[type=submit]")
    await expect(page.locator(".volume th")).to_have_text("2 марта")
    await expect(page.locator(".volume td")).to_have_text("Сайт: 2")
    await expect(page.locator(".report .summary")).to_have_text("2 диалого-дня · 2 цикла начато · 0 ещё без ответа")
    everyone = page.locator(".times").first.locator("tr[data-row=all]")
    await expect(everyone.locator("th")).to_have_text("Все")
    await expect(everyone.locator("td.median")).to_have_text("2 мин 30 с")
    await expect(page.locator(".report h3").nth(1)).to_have_text("Время первого ответа")

    # Back to English: at once, kept on the profile, and after a reload.
    await page.select_option("#language", "en")
    await expect(page.locator(".reports-page h2")).to_have_text("Reports")
    await expect(page.locator("nav a[data-page=inbox]")).to_have_text("Inbox")
    await expect(page.locator("#me")).to_have_text("Ольга (operator)")
    async with api(server, token) as http:
        assert (await http.get("/me")).json()["language"] == "en"
    await page.click("nav a[data-page=inbox]")
    await expect(page.locator(".list-count")).to_have_text("1 conversation")
    await expect(page.locator(".conversation .muted").first).to_contain_text("Ольга")
    await page.fill(".list-pane input[type=search]", word)
    await expect(page.locator(".list-count")).to_have_text("2 conversations")
    await page.reload()
    await expect(page.locator("nav a[data-page=contacts]")).to_have_text("Contacts")
    assert inbox.js_errors() == [], inbox.js_errors()
    for v in visitors:
        await v.close()
    await inbox.close()


async def test_an_operator_without_a_choice_gets_the_browsers_language(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin_token = await login(server)
    email = f"ivan-{cid()[:6]}@example.com"
    await create_operator(server, admin_token, email, name="Иван", role="sales")
    context = await browser.new_context(locale="ru-RU")
    page = await context.new_page()
    page.set_default_timeout(10_000)
    await page.goto(server.http + "/inbox/")
    await expect(page.locator("#login-form button[type=submit]")).to_have_text("Войти")
    await page.fill("#login-form input[name=email]", email)
    await page.fill("#login-form input[name=password]", "wrong password")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("Неверный email или пароль.")
    await page.fill("#login-form input[name=password]", "password-" + email)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#me")).to_have_text("Иван (продажи)")
    await expect(page.locator("#language")).to_have_value("")
    await page.click("nav a[data-page=contacts]")
    await expect(page.locator(".contacts-page .export")).to_have_text("Выгрузить CSV")
    await context.close()
