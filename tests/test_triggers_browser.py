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

from tests.harness import ChatServer, api, create_operator, login
from tests.inbox_browser import browser, open_inbox  # noqa: F401  (the fixture)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    tmp = tmp_path_factory.mktemp("triggers-browser")
    chat = ChatServer(tmp, f"sqlite+aiosqlite:///{tmp / 'chat.db'}")
    chat.start()
    yield chat
    chat.stop()


# Every field of the definition set to something other than the form's defaults.
FULL: dict[str, Any] = {
    "name": "Everything", "enabled": True,
    "when": {"type": "event", "event": "page_viewed",
             "where": [{"kind": "property", "key": "url", "op": "contains", "value": "/pricing"},
                       {"kind": "property", "key": "amount", "op": "gt", "value": 5}],
             "count": 3, "within_minutes": 10},
    "audience": {"filter": {"kind": "group", "match": "all", "conditions": [
        {"kind": "field", "field": "email", "op": "not_set"}]}, "online_now": True, "has_channel": "email"},
    "delay_seconds": 5400, "channel": "email",
    "sender": {"operator_id": 1, "bot_name": None},
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
    for when in WHENS:
        d = {**FULL, "when": when, "hours": None, "goal": None, "starts_at": None}
        assert await definition_module(inbox.page, "return m.toDefinition(m.fromDefinition(arg))", d) == d
    # What the form starts with is a valid-looking definition: paused, one variant of 100.
    fresh = await definition_module(inbox.page, "return m.toDefinition(m.newForm())", None)
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
