"""Segments and scores in the inbox, in real headless Chromium: an admin builds a segment in
the form and sees its count as it is edited; the card shows the score breakdown and the
segments the contact is in."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.harness import ChatServer, api, embedded_server, login
from tests.inbox_browser import browser, open_inbox  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    yield from embedded_server(tmp_path_factory, "behaviour-browser")


async def backend_key(server: ChatServer, admin: str) -> str:
    async with api(server, admin) as http:
        return str((await http.post("/api-keys", json={"name": "shop"})).json()["secret"])


async def send(server: ChatServer, key: str, path: str, body: dict[str, object]) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=server.http + "/api/v1", headers={"authorization": f"Bearer {key}"}) as http:
        r = await http.post(path, json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())


async def test_build_a_segment_in_the_form_and_see_its_count(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin = await login(server)
    key = await backend_key(server, admin)
    plan = "plan-" + uuid.uuid4().hex[:6]
    for n in range(3):
        await send(server, key, "/identify", {"user_id": f"{plan}-{n}", "properties": {"plan": plan if n < 2 else "free"}})
    inbox = await open_inbox(browser, server)
    page = inbox.page
    await page.click("nav a[data-page=segments]")
    await page.click("button.new-segment")
    await page.fill(".segment-form input[name=name]", f"On {plan}")
    await page.click(".segment-group.depth-1 > button.add-condition")
    await page.locator(".segment-condition select.kind").first.select_option("property")
    await page.locator(".segment-condition input.in-key").first.fill("plan")
    await page.locator(".segment-condition select.op").first.select_option("eq")
    await page.locator(".segment-condition input.in-value").first.fill(plan)
    await expect(page.locator(".segment-count")).to_have_text("2 contacts now")
    # An OR group inside: plan is ours, or (a nested group) the plan is "free".
    await page.locator(".segment-group.depth-1 > legend select").select_option("any")
    await page.click(".segment-group.depth-1 > button.add-group")
    nested = page.locator(".segment-group.depth-2 .segment-condition").first
    await nested.locator("select.kind").select_option("property")
    await nested.locator("input.in-key").fill("plan")
    await nested.locator("select.op").select_option("eq")
    await nested.locator("input.in-value").fill("free")
    await expect(page.locator(".segment-count")).to_have_text("3 contacts now")
    await page.click(".segment-form button[type=submit]")
    row = page.locator(".segments tbody tr", has_text=f"On {plan}")
    await expect(row.locator(".count")).to_have_text("3")
    assert inbox.js_errors() == []
    await inbox.close()


async def test_the_card_shows_the_score_breakdown_and_the_segments(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin = await login(server)
    key = await backend_key(server, admin)
    async with api(server, admin) as http:
        assert (await http.post("/scoring/preset")).status_code == 201
        segment = (await http.post("/segments", json={"name": "Warm", "definition": {"conditions": [
            {"kind": "number", "field": "score", "op": "gt", "value": 20}]}})).json()
        for _ in range(50):
            if not (await http.get("/scoring/recompute")).json()["running"]:
                break
            await asyncio.sleep(0.1)
    user = "lead-" + uuid.uuid4().hex[:6]
    await send(server, key, "/track", {"events": [{"user_id": user, "name": n} for n in
                                                   ("session_started", "guide_downloaded", "trial_finished")]})
    contact_id = (await send(server, key, "/identify", {"user_id": user, "name": "Lead Person"}))["contact_id"]
    inbox = await open_inbox(browser, server)
    page = inbox.page
    await page.goto(f"{server.http}/inbox/#/contacts/{contact_id}")
    summary = page.locator(".behaviour-summary")
    await expect(summary.locator(".score-value")).to_have_text("31")
    await expect(summary.locator(".score-breakdown tr")).to_have_count(3)
    await expect(summary.locator(".score-breakdown")).to_contain_text("Finished the trial")
    await expect(summary.locator(".contact-segments .segment")).to_have_text([segment["name"]])
    assert inbox.js_errors() == []
    await inbox.close()
