"""Real headless Chromium (Debian's) driven by Playwright, for the inbox's browser tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.harness import ADMIN_EMAIL, ADMIN_PASSWORD, ChatServer

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


class Inbox:
    """One operator's inbox tab."""

    def __init__(self, context: BrowserContext, page: Page, server: ChatServer) -> None:
        self.context = context
        self.page = page
        self.server = server
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    async def login(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
        await self.page.goto(self.server.http + "/inbox/")
        await self.page.fill("#login-form input[name=email]", email)
        await self.page.fill("#login-form input[name=password]", password)
        await self.page.click("#login-form button[type=submit]")
        await self.page.wait_for_selector("#app:not([hidden])")
        await self.page.wait_for_selector(".connection.online")

    async def token(self) -> str:
        return str(await self.page.evaluate("localStorage.getItem('inbox.token')"))

    async def close(self) -> None:
        await self.context.close()

    def js_errors(self) -> list[str]:
        return list(self.errors)


async def open_inbox(browser: Browser, server: ChatServer, **login: Any) -> Inbox:
    context = await browser.new_context(accept_downloads=True)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    inbox = Inbox(context, page, server)
    await inbox.login(**login)
    return inbox
