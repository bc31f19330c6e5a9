"""A proactive popup card with a lead-capture form, in headless Chromium: the visitor's email
or phone lands on the contact card and is recorded once as `lead_form_submitted`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from playwright.async_api import expect

from chat_server.actions.errors import ActionError
from chat_server.actions.proactive import do_send_proactive
from chat_server.bus import RedisBus
from chat_server.settings import Settings
from tests.browser import chromium, watch_console, widget
from tests.channel_helpers import eventually
from tests.harness import ChatServer, Socket, api, login
from tests.inprocess import runtime_for
from tests.services import RedisServer
from tests.test_widget_features import contact_id_named, open_page

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[ChatServer]:
    tmp = tmp_path_factory.mktemp("lead-form")
    chat = ChatServer(tmp, f"sqlite+aiosqlite:///{tmp / 'chat.db'}", redis_url=redis_server.url)
    chat.start()
    yield chat
    chat.stop()


async def test_a_lead_form_in_a_popup_card_fills_the_contact_card(site: ChatServer, redis_server: RedisServer) -> None:
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
            name = f"lead-{uuid.uuid4().hex[:8]}"
            await page.evaluate("([n]) => ChatWidget.identify({name: n})", [name])
            contact_id = await contact_id_named(site, token, name)

            with pytest.raises(ActionError):  # a form belongs in a widget card
                await do_send_proactive(rt, contact_id, "Leave your email", channel="email",
                                        form={"field": "email", "button": "Send"})
            offer = await do_send_proactive(rt, contact_id, "Get 10% off: leave your email", display="card",
                                            form={"field": "email", "button": "Get the offer"})
            popup = widget(page, ".card")
            await expect(popup).to_contain_text("Get 10% off")
            await popup.get_by_placeholder("Your email").fill("Lead@Example.org")
            await popup.get_by_role("button", name="Get the offer").click()
            await expect(popup).to_contain_text("Thank you!")

            phone = await do_send_proactive(rt, contact_id, "Shall we call you?", display="card",
                                            form={"field": "phone", "button": "Call me"})
            popup = widget(page, ".card")
            await popup.get_by_placeholder("Your phone").fill("call me maybe")
            await popup.get_by_role("button", name="Call me").click()
            await expect(popup).to_contain_text("not a phone number")
            await popup.get_by_placeholder("Your phone").fill("+7 999 123-45-67")
            await popup.get_by_role("button", name="Call me").click()
            await expect(popup).to_contain_text("Thank you!")

            async with api(site, token) as http:
                async def filled() -> dict[str, Any] | None:
                    card = (await http.get(f"/contacts/{contact_id}")).json()
                    return card if card["contact"]["phone"] else None
                card = await eventually(filled, what="the phone on the card")
                assert (card["contact"]["email"], card["contact"]["phone"]) == ("lead@example.org", "+7 999 123-45-67")
                events = (await http.get(f"/contacts/{contact_id}/events",
                                         params={"name": "lead_form_submitted"})).json()["items"]
                assert sorted((e["properties"]["message_id"], e["properties"]["field"]) for e in events) == sorted(
                    [(offer.message.id, "email"), (phone.message.id, "phone")])
                clicked = (await http.get(f"/contacts/{contact_id}/events",
                                          params={"name": "triggered_message_clicked"})).json()["items"]
                assert sorted(e["properties"]["message_id"] for e in clicked) == sorted(
                    [offer.message.id, phone.message.id])
        assert problems == []
    finally:
        await rt.bus.stop()
        await rt.db.dispose()


async def test_a_form_answer_names_a_form_shown_to_this_visitor(site: ChatServer, redis_server: RedisServer) -> None:
    token = await login(site)
    sock = Socket(await websockets.connect(site.ws + "/ws/widget"))
    await sock.send(type="hello")
    await sock.expect("welcome")
    name = f"nolead-{uuid.uuid4().hex[:8]}"
    await sock.send(type="identify", name=name)
    await sock.expect("identified")
    contact_id = await contact_id_named(site, token, name)
    settings = Settings(database_url=site.database_url, secret_key="test-secret-key", redis_url=redis_server.url,
                        data_dir=site.tmp / "data")
    rt = runtime_for(settings, RedisBus(redis_server.url))
    await rt.bus.start([])
    try:
        plain = await do_send_proactive(rt, contact_id, "No form here", display="card")
        for message_id in (plain.message.id, 9_000_000_000_000_000_000):
            await sock.send(type="form.submit", message_id=message_id, value="x@example.org")
            error = await sock.expect("error")
            assert (error["code"], error["ref"]) == ("message_not_found", "form.submit")
        await sock.send(type="form.submit", message_id=2**63, value="x@example.org")
        assert (await sock.expect("error"))["code"] == "invalid_frame"
        async with api(site, token) as http:
            card = (await http.get(f"/contacts/{contact_id}")).json()
        assert card["contact"]["email"] is None
    finally:
        await sock.close()
        await rt.bus.stop()
        await rt.db.dispose()
