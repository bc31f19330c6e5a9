"""The demo trigger in real headless Chromium: made on first start (once, however often the
server restarts), it greets a visitor who opens the pricing page three times, and the message
appears in the widget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import expect

from tests.browser import chromium, watch_console, widget
from tests.channel_helpers import eventually
from tests.conftest import database_url
from tests.harness import ChatServer, api, login

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def demo_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    tmp = tmp_path_factory.mktemp(f"demo-{request.param}")
    pg = request.getfixturevalue("postgres") if request.param == "postgres" else None
    chat = ChatServer(tmp, database_url(request.param, tmp, pg), CHAT_DEMO_TRIGGER="true")
    chat.start()
    yield chat
    chat.stop()


async def test_the_demo_trigger_greets_a_visitor_on_the_pricing_page(demo_server: ChatServer) -> None:
    server = demo_server
    server.restart()  # a second start adds no second demo trigger
    token = await login(server)
    async with api(server, token) as http:
        [demo] = [t for t in (await http.get("/triggers")).json()["items"] if t["name"].startswith("Demo")]
        assert demo["enabled"] and demo["definition"]["when"]["count"] == 3
    problems: list[str] = []
    async with chromium() as browser:
        page = await browser.new_page()
        watch_console(page, problems)
        async with api(server, token) as http:
            for n in range(1, 4):
                await page.goto(server.http + "/demo/pricing")
                await expect(widget(page, ".launcher")).to_be_visible()

                async def viewed(n: int = n) -> bool:
                    # Each view stored before the next page: leaving a page this soon may drop its event.
                    found = (await http.post("/contacts/search", json={})).json()["items"]
                    return any(c["properties"].get("pages_viewed") == n for c in found)
                await eventually(viewed, within=15, what=f"page view {n} stored")
        greeting = widget(page, ".msg:not(.mine)").last
        await expect(greeting).to_contain_text("Comparing plans? Ask me anything about prices.", timeout=20_000)
        async with api(server, token) as http:
            async def counted() -> dict[str, int] | None:
                found = (await http.get(f"/triggers/{demo['id']}")).json()
                return found if found["sent"] == 1 else None
            found = await eventually(counted, within=15, what="the demo trigger counted as sent")
            assert found is not None and found["matched"] == 1
    assert problems == []
