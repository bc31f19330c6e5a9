"""The inbox's Triggers page, in real headless Chromium: the form's state and the stored
definition are made from each other without loss; an admin builds the issue's example trigger
in the form and the server stores exactly what the form meant; pausing, duplicating, variant
weights, server complaints next to their field, a preview against a real contact; sales read only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from chat_server.triggers.definition import TriggerBody
from tests.harness import ChatServer, api, create_operator, embedded_server, login
from tests.inbox_browser import browser, open_inbox  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    yield from embedded_server(tmp_path_factory, "triggers-browser")


# Every field of the definition set to something other than the form's defaults.
FULL: dict[str, Any] = {
    "name": "Everything", "enabled": True,
    "when": {"type": "event", "event": "page_viewed", "url_contains": "/pricing",
             "where": [{"kind": "property", "key": "plan", "op": "contains", "value": "pro"},
                       {"kind": "property", "key": "amount", "op": "gt", "value": 5}],
             "count": 3, "within_minutes": 10},
    "audience": {"filter": {"kind": "group", "match": "all", "conditions": [
        {"kind": "field", "field": "email", "op": "not_set"}]}, "online_now": True, "has_channel": "email"},
    "delay_seconds": 5400, "channel": "email",
    "sender": {"operator_id": 1, "bot_name": "Bot"},
    "variants": [{"name": "A", "weight": 60, "text": "Hi {{ contact.name }}", "subject": "Hello", "form": None},
                 {"name": "B", "weight": 40, "text": "Hey", "subject": None, "form": {"field": "phone", "button": "Call me"}}],
    "control_percent": 10,
    "limits": {"frequency": "once_per_period", "period_hours": 48, "skip_if_live_conversation": False},
    "hours": {"timezone": "Europe/Berlin", "days": {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], "sat": [["10:00", "12:00"]]}},
    "starts_at": "2026-12-01T09:30:00.000Z", "ends_at": "2027-01-31T18:00:00.000Z",
    "goal": {"event": "order_placed", "where": [{"kind": "property", "key": "plan", "op": "eq", "value": "pro"}],
             "within_hours": 72, "revenue_property": "amount"},
}
# The other kinds of "when", each with all its fields.
WHENS: list[dict[str, Any]] = [
    {"type": "segment_entered", "segment_id": 7}, {"type": "segment_left", "segment_id": 8},
    {"type": "page_time", "url_contains": "/pricing", "seconds": 30}, {"type": "exit_intent", "url_contains": "/checkout"},
    {"type": "property_changed", "property": "plan"}, {"type": "inactivity", "event": "session_started", "days": 14},
    {"type": "date_property", "property": "birthday", "offset_days": -2, "annual": False},
    {"type": "emails_not_opened", "count": 3},
]


async def definition_module(page: Page, script: str, arg: Any) -> Any:
    # The page's CSP allows no eval: the script is the body of the evaluated function itself.
    return await page.evaluate(
        "async (arg) => { const m = await import('/inbox/js/trigger_definition.js'); " + script + " }", arg)


async def test_the_form_and_the_definition_are_made_from_each_other_without_loss(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    inbox = await open_inbox(browser, server)
    back = await definition_module(inbox.page, "return m.toDefinition(m.fromDefinition(arg))", FULL)
    assert back == FULL
    TriggerBody.model_validate(back)  # and the server takes it as it is
    for when in WHENS:
        d = {**FULL, "when": when, "hours": None, "goal": None, "starts_at": None}
        assert await definition_module(inbox.page, "return m.toDefinition(m.fromDefinition(arg))", d) == d
        TriggerBody.model_validate(d)
    # What the form starts with is a definition the server takes once it has a name and a text.
    fresh = await definition_module(inbox.page, "const f = m.newForm(); f.name = 'N'; f.variants[0].text = 'Hi';"
                                    " return m.toDefinition(f)", None)
    TriggerBody.model_validate(fresh)
    assert fresh["enabled"] is False and [v["weight"] for v in fresh["variants"]] == [100]
    assert fresh["when"] == {"type": "event", "event": "page_viewed", "where": [], "count": 1}
    # The delay is shown in the largest whole unit, and the form catches what it can by itself.
    assert await definition_module(inbox.page, "return m.fromDefinition(arg).delay", {**FULL, "delay_seconds": 90}) == {
        "amount": "90", "unit": "seconds"}
    found = await definition_module(inbox.page, "const f = m.fromDefinition(arg); f.variants[1].weight = '50';"
                                    " f.hours.days.tue = '9-17'; return m.problems(f)", FULL)
    assert found == [{"field": "variants", "key": "weights_sum", "params": {"total": 110}},
                     {"field": "hours.days.tue", "key": "hours_format", "params": {}}]
    assert inbox.js_errors() == []
    await inbox.close()


async def new_trigger_form(page: Page) -> None:
    await page.click("nav a[data-page=triggers]")
    await page.click("button.new-trigger")
    await expect(page.locator(".trigger-form")).to_be_visible()


async def test_an_admin_builds_the_pricing_trigger_pauses_and_duplicates_it(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin = await login(server)
    async with api(server, admin) as http:
        me = (await http.get("/me")).json()
    name = "Pricing " + uuid.uuid4().hex[:6]
    text = "Hi {{ contact.name | default: 'there' }}, questions about our prices?"
    inbox = await open_inbox(browser, server)
    page = inbox.page
    await new_trigger_form(page)
    form = page.locator(".trigger-form")
    await form.locator(".trigger-name").fill(name)
    await form.locator("input[name=enabled]").check()
    # When: 3 views of /pricing within 10 minutes.
    await form.locator(".when-event").fill("page_viewed")
    await form.locator(".when-url_contains").fill("/pricing")
    await form.locator(".when-count").fill("3")
    await form.locator(".when-within_minutes").fill("10")
    # Who: the email is unknown (the segment builder).
    await form.locator(".audience .segment-group.depth-1 > button.add-condition").click()
    condition = form.locator(".audience .segment-condition").first
    await condition.locator("select.field").select_option("email")
    await condition.locator("select.op").select_option("not_set")
    # How: after 30 s, a chat message from an operator.
    await form.locator(".delay-amount").fill("30")
    await form.locator(".delay-unit").select_option("seconds")
    await form.locator("select.channel").select_option("widget_chat")
    await form.locator("select.sender").select_option(str(me["id"]))
    await expect(form.locator(".bot-name")).to_have_count(0)
    await form.locator(".variant-text").fill(text)
    await expect(form.locator(".weights-total")).to_have_text("Weights add up to 100%")
    await form.locator("button.save").click()
    await expect(page.locator(".triggers tbody tr", has_text=name).locator(".status")).to_have_text("active")
    await expect(page.locator(".trigger-form")).to_have_count(0)
    # The server stores what the form meant.
    async with api(server, admin) as http:
        listed = [t for t in (await http.get("/triggers")).json()["items"] if t["name"] == name]
        assert len(listed) == 1
        stored = (await http.get(f"/triggers/{listed[0]['id']}")).json()
    row = page.locator(f".triggers tbody tr[data-trigger='{stored['id']}']")
    assert meant(stored) == {
        "name": name, "enabled": True,
        "when": {"type": "event", "event": "page_viewed", "url_contains": "/pricing", "count": 3, "within_minutes": 10,
                 "where": []},
        "audience": {"filter": {"kind": "group", "match": "all", "conditions": [
            {"kind": "field", "field": "email", "op": "not_set"}]}, "online_now": False, "has_channel": None},
        "delay_seconds": 30, "channel": "widget_chat", "sender": {"operator_id": me["id"], "bot_name": "Bot"},
        "variants": [{"name": "A", "weight": 100, "text": text, "subject": None, "form": None}],
        "control_percent": 0,
        "limits": {"frequency": "once", "period_hours": 24, "skip_if_live_conversation": True},
        "hours": None, "starts_at": None, "ends_at": None, "goal": None,
    }
    # Pause it, then duplicate it: the copy appears beside it.
    await row.locator("button.toggle").click()
    await expect(row.locator(".status")).to_have_text("paused")
    async with api(server, admin) as http:
        assert (await http.get(f"/triggers/{listed[0]['id']}")).json()["enabled"] is False
    await row.locator("button.duplicate").click()
    await expect(page.locator(".triggers tbody tr", has_text=name)).to_have_count(2)
    # Editing shows what was stored, and saving again changes nothing it did not touch.
    await row.locator("button.edit").click()
    await expect(form.locator(".when-count")).to_have_value("3")
    await expect(form.locator(".audience select.op")).to_have_value("not_set")
    await form.locator("button.save").click()
    await expect(page.locator(".trigger-form")).to_have_count(0)
    async with api(server, admin) as http:
        again = (await http.get(f"/triggers/{listed[0]['id']}")).json()
    assert meant(again) == {**meant(stored), "enabled": False}
    # Resume it; delete the copy (after confirming): the original stays.
    await row.locator("button.toggle").click()
    await expect(row.locator(".status")).to_have_text("active")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.locator(".triggers tbody tr", has_text=name).locator(f"xpath=self::tr[not(@data-trigger='{stored['id']}')]") \
        .locator("button.delete").click()
    await expect(page.locator(".triggers tbody tr", has_text=name)).to_have_count(1)
    async with api(server, admin) as http:
        assert [t["id"] for t in (await http.get("/triggers")).json()["items"] if t["name"].startswith(name)] == [stored["id"]]
    assert inbox.js_errors() == []
    await inbox.close()


KEYS = ("name", "enabled", "when", "audience", "delay_seconds", "channel", "sender", "variants", "control_percent",
        "limits", "hours", "starts_at", "ends_at", "goal")


def meant(trigger: dict[str, Any]) -> dict[str, Any]:
    """The definition's part of a trigger as the API returns it, without conditions' unset extras."""
    def bare(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: bare(v) for k, v in value.items() if not (v is None and k in ("value", "values", "days", "url_contains"))}
        if isinstance(value, list):
            return [bare(v) for v in value]
        return value
    whole = {"name": trigger["name"], "enabled": trigger["enabled"], **trigger["definition"]}
    return {k: bare(whole[k]) if k in ("when", "audience") else whole[k] for k in KEYS}


async def test_weights_that_do_not_add_up_and_server_complaints_show_at_their_field(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin = await login(server)
    inbox = await open_inbox(browser, server)
    page = inbox.page
    await new_trigger_form(page)
    form = page.locator(".trigger-form")
    await form.locator(".trigger-name").fill("Weights " + uuid.uuid4().hex[:6])
    await form.locator(".variant-text").fill("Hello")
    await form.locator("button.add-variant").click()
    variant_b = form.locator(".variant").nth(1)
    await variant_b.locator(".variant-text").fill("Hi")
    await variant_b.locator(".variant-weight").fill("30")
    await expect(form.locator(".weights-total")).to_have_text("Weights add up to 130%")
    await expect(form.locator(".variants-editor > .field-error")).to_have_text("The variants' weights add up to 130, not 100.")
    async with api(server, admin) as http:
        before = len((await http.get("/triggers")).json()["items"])
    await form.locator("button.save").click()
    await expect(form.locator(".variants-editor > .field-error")).to_have_text("The variants' weights add up to 130, not 100.")
    await form.locator(".variant").first.locator(".variant-weight").fill("70")
    await expect(form.locator(".variants-editor > .field-error")).to_have_text("")
    # What only the server knows: the complaint lands next to the field it is about.
    await form.locator(".when-count").fill("0")
    await form.locator("button.save").click()
    await expect(form.locator("[data-field='when.count'] .field-error")).not_to_have_text("")
    async with api(server, admin) as http:
        assert len((await http.get("/triggers")).json()["items"]) == before
    assert [e for e in inbox.js_errors() if "422" not in e] == []
    await inbox.close()


async def test_a_preview_renders_against_a_real_contact(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin = await login(server)
    person = "Ada " + uuid.uuid4().hex[:6]
    async with api(server, admin) as http:
        key = (await http.post("/api-keys", json={"name": "shop"})).json()["secret"]
    async with httpx.AsyncClient(base_url=server.http + "/api/v1", headers={"authorization": f"Bearer {key}"}) as http:
        r = await http.post("/identify", json={"user_id": person, "name": person})
        assert r.status_code == 200, r.text
    inbox = await open_inbox(browser, server)
    page = inbox.page
    await new_trigger_form(page)
    form = page.locator(".trigger-form")
    await form.locator(".preview-contact .contact-search").fill(person)
    await expect(form.locator(".preview-contact .contact-choice option")).to_have_count(1)
    await expect(form.locator(".preview-contact .contact-choice option")).to_contain_text(person)
    await form.locator(".variant-text").fill("Hi {{ contact.name }}!")
    await form.locator(".variant button.preview").click()
    await expect(form.locator(".variant .preview-text")).to_have_text(f"Hi {person}!")
    await form.locator(".variant-text").fill("Hi {{ contact.name | no_such_filter }}")
    await form.locator(".variant button.preview").click()
    await expect(form.locator(".variant .preview-result.error")).to_contain_text("The message cannot be rendered")
    assert [e for e in inbox.js_errors() if "422" not in e] == []
    await inbox.close()


async def test_sales_see_the_list_read_only_with_the_results_link(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin = await login(server)
    name = "Seen by sales " + uuid.uuid4().hex[:6]
    async with api(server, admin) as http:
        r = await http.post("/triggers", json={
            "name": name, "enabled": True, "when": {"type": "exit_intent", "url_contains": "/checkout"},
            "variants": [{"name": "A", "weight": 100, "text": "Wait!"}]})
        assert r.status_code == 201, r.text
        trigger_id = r.json()["id"]
    email = f"sales-{uuid.uuid4().hex[:6]}@example.com"
    await create_operator(server, admin, email, role="sales")
    inbox = await open_inbox(browser, server, email=email, password="password-" + email)
    page = inbox.page
    await page.click("nav a[data-page=triggers]")
    row = page.locator(".triggers tbody tr", has_text=name)
    await expect(row.locator(".status")).to_have_text("active")
    await expect(row.locator("a.results")).to_have_attribute("href", f"#/triggers/{trigger_id}/results")
    await expect(page.locator("button.new-trigger")).to_have_count(0)
    await expect(page.locator(".triggers button")).to_have_count(0)
    # The results page (its own module) opens from the link, with the way back.
    await row.locator("a.results").click()
    await expect(page.locator("a.back")).to_have_attribute("href", "#/triggers")
    await expect(page.locator(".triggers")).to_have_count(0)
    # Until the results module is merged in, its file is missing: that 404 is the only complaint.
    missing = ("trigger_results.js", "the server responded with a status of 404")
    assert [e for e in inbox.js_errors() if not any(m in e for m in missing)] == []
    await inbox.close()


async def test_explain_shows_each_condition_and_the_dry_run_counts(server: ChatServer, browser: Browser) -> None:  # noqa: F811
    admin = await login(server)
    tag = uuid.uuid4().hex[:6]
    async with api(server, admin) as http:
        key = (await http.post("/api-keys", json={"name": "shop"})).json()["secret"]
        r = await http.post("/triggers", json={
            "name": f"Explained {tag}", "enabled": False,
            "when": {"type": "event", "event": "page_viewed", "url_contains": f"/pricing-{tag}", "count": 2, "within_minutes": 10},
            "audience": {"filter": {"kind": "group", "match": "all", "conditions": [
                {"kind": "field", "field": "email", "op": "not_set"}]}},
            "variants": [{"name": "A", "weight": 100, "text": "Hi"}]})
        assert r.status_code == 201, r.text
        trigger_id = r.json()["id"]
    async with httpx.AsyncClient(base_url=server.http + "/api/v1", headers={"authorization": f"Bearer {key}"}) as http:
        for who, extra in ((f"anon-{tag}", {}), (f"known-{tag}", {"new_email": f"known-{tag}@example.com"})):
            assert (await http.post("/identify", json={"user_id": who, "name": who, **extra})).status_code == 200
            r = await http.post("/track", json={"events": [
                {"user_id": who, "name": "page_viewed", "url": f"https://shop.example/pricing-{tag}"} for _ in range(2)]})
            assert r.status_code == 200, r.text
    expected = await api_dry_run(server, admin, trigger_id)
    assert expected["fired"] >= 1
    inbox = await open_inbox(browser, server)
    page = inbox.page
    await page.click("nav a[data-page=triggers]")
    await page.locator(f".triggers tbody tr[data-trigger='{trigger_id}'] button.edit").click()
    tools = page.locator(".trigger-form .trigger-tools")
    await tools.locator(".contact-search").fill(f"known-{tag}")
    await expect(tools.locator(".contact-choice option")).to_have_count(1)
    await expect(tools.locator(".contact-choice option")).to_contain_text(f"known-{tag}")
    await tools.locator("button.explain-button").click()
    result = tools.locator(".explain-result")
    await expect(result.locator(".verdict")).to_have_text("It would not send to this contact now.")
    # The email is known: the audience's condition fails and says what it saw; the views count.
    audience = result.locator("li", has_text="audience.filter[0]")
    await expect(audience).to_have_class("failed")
    await expect(audience.locator(".mark")).to_have_text("✗")
    await expect(audience.locator(".value")).to_contain_text(f"known-{tag}@example.com")
    await expect(result.locator("li", has_text="when:")).to_have_class("ok")
    await expect(result.locator("li", has_text="when:").locator(".mark")).to_have_text("✓")
    await expect(result.locator("li", has_text="enabled")).to_have_class("failed")
    await tools.locator(".dry-run-days").fill("7")
    await tools.locator("button.dry-run-button").click()
    times = "time" if expected["fired"] == 1 else "times"
    await expect(tools.locator(".dry-run-result .summary")).to_have_text(
        f"Over the last 7 days it would have fired {expected['fired']} {times}, for {expected['contacts']} contacts.")
    await expect(tools.locator(".dry-run-result .sample li")).to_have_count(len(expected["sample"]))
    assert inbox.js_errors() == []
    await inbox.close()


async def api_dry_run(server: ChatServer, token: str, trigger_id: int) -> dict[str, Any]:
    async with api(server, token) as http:
        r = await http.post(f"/triggers/{trigger_id}/dry-run", json={"days": 7})
        assert r.status_code == 200 and r.json()["supported"], r.text
        return dict(r.json())
