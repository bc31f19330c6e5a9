"""A trigger definition is checked on the way in: whatever does not add up is refused with a
message naming the field and the reason."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chat_server.triggers.definition import Definition, TriggerBody


def valid(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Pricing greeting", "enabled": False,
        "when": {"type": "event", "event": "page_viewed", "url_contains": "/pricing", "count": 3, "within_minutes": 10},
        "audience": {"filter": {"kind": "group", "match": "all", "conditions": [
            {"kind": "field", "field": "email", "op": "not_set"}]}, "online_now": True},
        "delay_seconds": 30, "channel": "widget_chat", "sender": {"operator_id": None, "bot_name": "Bot"},
        "variants": [{"name": "A", "weight": 50, "text": "Hi {{ contact.name | default: 'there' }}"},
                     {"name": "B", "weight": 50, "text": "Questions about prices?"}],
        "control_percent": 10, "limits": {"frequency": "once_per_period", "period_hours": 24},
        "hours": {"timezone": "Europe/Moscow", "days": {"mon": [["09:00", "18:00"]], "sat": [["10:00", "14:00"]]}},
        "goal": {"event": "order_placed", "within_hours": 72, "revenue_property": "amount"},
    }
    body.update(changes)
    return body


def error_of(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        TriggerBody.model_validate(body)
    return " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in caught.value.errors())


def test_a_full_definition_is_accepted_and_round_trips() -> None:
    body = TriggerBody.model_validate(valid())
    stored = body.definition()
    assert "name" not in stored and "enabled" not in stored
    assert Definition.model_validate(stored).model_dump(mode="json") == stored


def test_every_kind_of_when_is_accepted() -> None:
    for when in [{"type": "segment_entered", "segment_id": 7}, {"type": "segment_left", "segment_id": 7},
                 {"type": "page_time", "url_contains": "/pricing", "seconds": 30},
                 {"type": "exit_intent", "url_contains": "/checkout"}, {"type": "property_changed", "property": "plan"},
                 {"type": "inactivity", "event": "session_started", "days": 14},
                 {"type": "date_property", "property": "birthday", "offset_days": -3, "annual": True},
                 {"type": "emails_not_opened", "count": 3}]:
        assert TriggerBody.model_validate(valid(when=when)).when.type == when["type"]


@pytest.mark.parametrize(("changes", "expected"), [
    ({"variants": [{"name": "A", "weight": 60, "text": "x"}, {"name": "B", "weight": 30, "text": "y"}]},
     "weights add up to 90, not 100"),
    ({"variants": [{"name": "A", "weight": 50, "text": "x"}, {"name": "A", "weight": 50, "text": "y"}]},
     "names must be unique"),
    ({"variants": []}, "at least 1 item"),
    ({"variants": [{"name": n, "weight": 20, "text": "x"} for n in "ABCDEF"]}, "at most 5 items"),
    ({"variants": [{"name": "control", "weight": 100, "text": "x"}]}, "names the control group"),
    ({"variants": [{"name": "A", "weight": 100, "text": "Hi {% if %}"}]}, "does not parse"),
    ({"variants": [{"name": "A", "weight": 100, "text": "Hi {{ contact.name "}]}, "does not parse"),
    ({"control_percent": 95}, "less than or equal to 90"),
    ({"delay_seconds": 31 * 86400}, "less than or equal to 2592000"),
    ({"delay_seconds": -1}, "greater than or equal to 0"),
    ({"hours": {"timezone": "Mars/Olympus", "days": {"mon": [["09:00", "18:00"]]}}}, "IANA time zone"),
    ({"hours": {"timezone": "UTC", "days": {"mon": [["9am", "18:00"]]}}}, "not a time HH:MM"),
    ({"hours": {"timezone": "UTC", "days": {"mon": [["18:00", "09:00"]]}}}, "ends before it starts"),
    ({"hours": {"timezone": "UTC", "days": {"funday": [["09:00", "18:00"]]}}}, "is not a day"),
    ({"hours": {"timezone": "UTC", "days": {}}}, "at least one interval"),
    ({"when": {"type": "teleport"}}, "does not match any of the expected tags"),
    ({"when": {"type": "page_time", "url_contains": "/x"}}, "when.page_time.seconds: Field required"),
    ({"when": {"type": "event", "event": "page_viewed", "count": 0}}, "greater than or equal to 1"),
    ({"audience": {"filter": {"kind": "group", "conditions": [{"kind": "field", "field": "shoe_size", "op": "eq"}]}}},
     "audience.filter"),
    ({"channel": "lead_form"}, "give each variant a form"),
    ({"channel": "carrier_pigeon"}, "channel"),
    ({"starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"}, "ends_at comes before starts_at"),
    ({"limits": {"frequency": "sometimes"}}, "limits.frequency"),
    ({"surprise": 1}, "Extra inputs are not permitted"),
])
def test_bad_definitions_say_what_is_wrong(changes: dict[str, Any], expected: str) -> None:
    assert expected in error_of(valid(**changes))


@pytest.mark.parametrize(("template", "expected"), [
    ("{% for i in (1..100000) %}x{% endfor %}", "loop iteration limit"),
    ("{% include 'secrets' %}", "unexpected tag 'include'"),
    ("{% render 'secrets' %}", "unexpected tag 'render'"),
    ("{{ 'x' | nosuch }}", "unknown filter"),
    ("{{ contact.nothing }}", "renders to an empty message"),
    ("{% for i in (1..900) %}{{ 'ab' | append: 'cdefghijklmnopqrstuvwxyz0123456789' }}{% endfor %}", "longer than"),
])
def test_templates_are_sandboxed_and_bounded(template: str, expected: str) -> None:
    from chat_server.triggers.templates import TemplateError, render

    with pytest.raises(TemplateError) as caught:
        render(template, {"contact": {"name": "Ann"}})
    assert expected in str(caught.value)


def test_templates_see_the_contact_and_the_event() -> None:
    from types import SimpleNamespace

    from chat_server.triggers.templates import contact_context, render

    person = SimpleNamespace(id=7, name="Ann Lee", email=None, phone=None, properties={"plan": "pro"})
    context = contact_context(person, {"name": "order_placed", "properties": {"amount": 120}})
    text = ("{{ contact.first_name }} on {{ contact.plan }} paid {{ event.properties.amount }}, "
            "{{ contact.email | default: 'no email' }}")
    assert render(text, context) == "Ann on pro paid 120, no email"
