"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, for the widget."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from playwright.async_api import Browser, Page, async_playwright, expect

from tests.services import require_binary

# Four engineers share two cores: give the page time; nothing here asserts speed.
expect.set_options(timeout=15_000)

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = require_binary("/usr/bin/chromium", "chromium")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def watch_console(page: Page, into: list[str]) -> None:
    """Collect page errors and dialogs: an alert() from injected markup must fail the test."""
    page.on("pageerror", lambda exc: into.append(f"pageerror: {exc}"))
    def on_console(msg: Any) -> None:
        # Until a channel is configured the channel-links endpoint answers 404, by design.
        if msg.type == "error" and "/api/v1/widget/channel-links" not in msg.location.get("url", ""):
            into.append(f"console.{msg.type}: {msg.text} {msg.location}")

    page.on("console", on_console)

    async def on_dialog(dialog: Any) -> None:
        into.append(f"dialog: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", on_dialog)


def widget(page: Page, selector: str) -> Any:
    """A locator inside the widget's shadow root (Playwright's CSS pierces open shadow roots)."""
    return page.locator(f"[data-chat-widget] {selector}")
