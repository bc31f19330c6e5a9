"""The inbox tells an operator, before they reply, that the person blocked us on that channel."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.channel_helpers import fixture
from tests.fakes.telegram_api import TOKEN, FakeBotApi
from tests.harness import ChatServer, api, embedded_server, login
from tests.inbox_browser import browser, open_inbox  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anyio

SECRET = "s3cret-token-for-webhook-calls"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    yield from embedded_server(tmp_path_factory, "blocked")


async def test_the_composer_warns_when_the_person_blocked_the_bot(server: ChatServer,
                                                                  browser: Browser) -> None:  # noqa: F811
    async with FakeBotApi() as tg, api(server, await login(server)) as http:
        r = await http.post("/channels", json={"channel": "telegram", "name": "bot", "config": {
            "token": TOKEN, "bot_username": "support_test_bot", "api_base": tg.base, "mode": "webhook",
            "webhook_secret": SECRET}})
        assert r.status_code == 201, r.text
        instance = r.json()
        async with httpx.AsyncClient(base_url=server.http, timeout=30) as client:
            for name in ("text", "my_chat_member_kicked"):
                r = await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=fixture("telegram", name),
                                      headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
                assert r.status_code == 200, r.text
        inbox = await open_inbox(browser, server)
        page = inbox.page
        await page.locator(".conversation", has_text="Ivan Petrov").first.click()
        await expect(page.locator(".card .tag.blocked")).to_have_text("blocked us")
        note = page.locator(".composer .blocked-note")
        await expect(note).to_be_visible()
        await expect(note).to_contain_text("blocked us on Telegram")
        # Writing a private note needs no warning.
        await page.locator(".composer button.mode", has_text="Private note").click()
        await expect(note).to_be_hidden()
        assert inbox.js_errors() == []
        await inbox.close()
