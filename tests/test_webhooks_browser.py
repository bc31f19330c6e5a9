"""Webhooks on the Admin page, in real headless Chromium: an admin registers an endpoint, sees
its signing secret once, sends a test event to a real receiver on loopback and sees the last
delivery's status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, expect

from tests.harness import ChatServer, embedded_server
from tests.inbox_browser import browser, open_inbox  # noqa: F401  (the fixture)
from tests.webhook_receiver import Receiver, verify

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    yield from embedded_server(tmp_path_factory, "webhooks-browser", CHAT_WEBHOOK_ALLOW_HTTP_LOOPBACK="true")


async def test_admin_adds_a_webhook_sees_the_secret_once_and_the_last_delivery(
    server: ChatServer, browser: Browser,  # noqa: F811
) -> None:
    async with Receiver() as crm:
        inbox = await open_inbox(browser, server)
        page = inbox.page
        await page.click("nav a[data-page=admin]")
        form = page.locator("form.add-webhook")
        await form.locator("input[name=name]").fill("Sales CRM")
        await form.locator("input[name=url]").fill(crm.url)
        await form.get_by_label("Message created").check()
        await form.get_by_label("Contact created").check()
        await form.locator("button[type=submit]").click()
        secret = await page.locator(".webhooks-admin .secret-once code.secret").text_content()
        assert secret and secret.startswith("whsec_")
        row = page.locator("table.webhooks tbody tr", has_text="Sales CRM").first
        await expect(row.locator(".last-status")).to_have_text("Nothing sent yet")

        await row.locator("button.send-test").click()
        await crm.until(lambda: len(crm.accepted("webhook.test")) == 1)
        assert verify(secret, crm.requests[0].headers, crm.requests[0].body)
        # Sending a test opens the recent deliveries, which follow the pending one until it settles.
        await expect(page.locator("table.deliveries tr.delivery.delivered")).to_have_count(1)
        row = page.locator("table.webhooks tbody tr", has_text="Sales CRM").first
        await expect(row.locator(".last-status")).to_contain_text("HTTP 200")
        await row.locator("button.show-deliveries").click()
        await expect(page.locator("table.deliveries")).to_have_count(0)
        await row.locator("button.show-deliveries").click()
        await expect(page.locator("table.deliveries tr.delivery.delivered")).to_have_count(1)

        # Shown once: after a reload the page knows only the secret's first characters.
        await page.reload()
        await page.click("nav a[data-page=admin]")
        await expect(page.locator("table.webhooks tbody tr", has_text="Sales CRM").first).to_be_visible()
        assert secret not in await page.content()
        assert inbox.js_errors() == []
        await inbox.close()
