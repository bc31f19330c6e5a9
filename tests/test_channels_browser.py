"""In real Chromium, an admin connects a Telegram bot and a mailbox from the Admin page's
Channels section, against a local Bot API server, a Dovecot and an SMTP server: a wrong token
and a wrong password are refused with a clear message and nothing is saved; the bot's state
changes when an update arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme
from playwright.async_api import Browser, expect

from tests.appserver import AppServer
from tests.channel_helpers import fixture
from tests.fakes.telegram_api import TOKEN, FakeBotApi
from tests.inbox_browser import browser, open_inbox  # noqa: F401
from tests.mailservers import PASSWORD, USER, DovecotServer, SmtpSink

pytestmark = pytest.mark.anyio
expect.set_options(timeout=15_000)  # machines shared by several engineers: nothing here asserts speed


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[AppServer]:
    async with AppServer(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}") as server:
        yield server


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def sink(ca: trustme.CA) -> Iterator[SmtpSink]:
    with SmtpSink(ca) as server:
        yield server


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer() as server:
        yield server


async def test_an_admin_connects_a_bot_and_a_mailbox_from_the_channels_section(
        app: AppServer, tg: FakeBotApi, sink: SmtpSink, dovecot: DovecotServer, ca: trustme.CA,
        tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    inbox = await open_inbox(browser, app)  # type: ignore[arg-type]
    page = inbox.page
    await page.click("nav a[data-page=admin]")
    section = page.locator("section.channels-admin")
    await expect(section.locator("tbody")).to_contain_text("No channels yet")

    # A Telegram bot: the token from BotFather, checked with getMe.
    await section.locator("button[data-kind=telegram]").click()
    form = section.locator("form.channel-form.telegram")
    await expect(form.locator(".guide")).to_contain_text("@BotFather")
    await form.locator("input[name=name]").fill("Support bot")
    await form.locator("input[name=token]").fill("7000001:AAE_a-token-that-was-revoked")
    await form.locator("summary").click()
    await form.locator("input[name=api_base]").fill(tg.base)
    await form.locator("button[type=submit]").click()
    error = form.locator(".check-error")
    # The first check loads aiogram in the server: slow on a busy machine.
    await expect(error).to_contain_text("The token was not accepted.", timeout=60_000)
    await expect(error).to_contain_text("Telegram refused this bot token")
    await expect(form.locator("input[name=token]")).to_have_attribute("aria-invalid", "true")
    await expect(section.locator("tbody")).to_contain_text("No channels yet")  # nothing saved

    await form.locator("input[name=token]").fill(TOKEN)
    await form.locator("button[type=submit]").click()
    await expect(form).to_have_count(0)
    bot = section.locator("tr.channel[data-kind=telegram]")
    await expect(bot).to_contain_text("@support_test_bot")  # learned from getMe
    await expect(bot.locator(".channel-state")).to_have_text("connected")
    await expect(bot.locator(".last-update")).to_have_text("never")
    await expect(bot.locator(".queue")).to_have_text("0")

    # A customer writes to the bot: the row shows that an update was received.
    tg.queue_update(fixture("telegram", "text"))
    await expect(bot.locator(".last-update")).not_to_have_text("never", timeout=20_000)

    # A mailbox: SMTP and IMAP logins are tried before it is saved.
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    await section.locator("button[data-kind=email]").click()
    form = section.locator("form.channel-form.email")
    await expect(form.locator(".guide")).to_contain_text("IMAP")
    values = {"name": "Support mailbox", "address": USER, "smtp_host": "127.0.0.1", "smtp_port": str(sink.port),
              "smtp_username": "smtp-user", "smtp_password": "not-the-password", "imap_host": "127.0.0.1",
              "imap_port": str(dovecot.port), "imap_username": USER, "imap_password": PASSWORD}
    for name, value in values.items():
        await form.locator(f"input[name={name}]").fill(value)
    await form.locator("select[name=smtp_security]").select_option("starttls")
    await form.locator("select[name=imap_security]").select_option("none")
    await form.locator("summary").click()
    await form.locator("input[name=ca_file]").fill(str(ca_file))
    await form.locator("button[type=submit]").click()
    error = form.locator(".check-error")
    await expect(error).to_contain_text("The mail server refused the login.")
    await expect(error).to_contain_text("refused the login of 'smtp-user'")
    await expect(form.locator("input[name=smtp_password]")).to_have_attribute("aria-invalid", "true")
    await expect(section.locator("tr.channel")).to_have_count(1)  # still only the bot

    await form.locator("input[name=smtp_password]").fill("smtp-password")
    await form.locator("button[type=submit]").click()
    await expect(form).to_have_count(0)
    mailbox = section.locator("tr.channel[data-kind=email]")
    await expect(mailbox.locator(".channel-state")).to_have_text("connected")

    # Pause and resume from the list.
    await mailbox.get_by_role("button", name="Pause").click()
    await expect(mailbox.locator(".channel-state")).to_have_text("paused")
    await mailbox.get_by_role("button", name="Resume").click()
    await expect(mailbox.locator(".channel-state")).to_have_text("connected")

    # The two refusals, as the browser logs them (the response, and the console's note of it).
    refusals = [e for e in inbox.js_errors() if "422" in e]
    assert len(refusals) == 4, inbox.js_errors()
    unexpected = [e for e in inbox.js_errors() if e not in refusals]
    assert unexpected == []
    await inbox.close()
