"""Lead scoring: the source's preset with its breakdown, once per contact, at most N times,
decay, card rules that come and go, the grade, and a rule edit recomputing every score."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import select

from chat_server.actions.contact_edit import do_update_contact
from chat_server.actions.membership import do_sweep_segments
from chat_server.actions.score_recompute import do_settle_expired_points
from chat_server.actions.scoring import scoring_state
from chat_server.actions.scoring_rules import do_create_rule, do_install_scoring_preset, do_set_grading, do_update_rule
from chat_server.actions.segments import do_create_segment
from chat_server.actions.tracking import TrackItem, do_track
from chat_server.behaviour.scoring import GradingConfig, RuleDefinition
from chat_server.behaviour.segments import Group
from chat_server.models import Contact, Operator, Role, ScoringRule, SegmentMembership
from chat_server.models.types import utcnow
from chat_server.reads.scoring import breakdown
from chat_server.runtime import Runtime

pytestmark = pytest.mark.anyio
ADMIN = Operator(name="Admin", email="admin@example.com", role=Role.admin, password_hash="x")


async def new_contact(rt: Runtime, **fields: Any) -> int:
    async with rt.db.write() as s:
        contact = Contact(**fields)
        s.add(contact)
        await s.flush()
        assert contact.id is not None
        return contact.id


async def score_of(rt: Runtime, contact_id: int) -> tuple[int, str | None]:
    async with rt.db.read() as s:
        contact = await s.get(Contact, contact_id)
        assert contact is not None
        return contact.score, contact.grade


async def settled(rt: Runtime) -> None:
    task = scoring_state(rt).task
    if task is not None:
        await task


async def test_the_source_preset_with_its_breakdown(rt: tuple[Runtime, Any]) -> None:
    runtime, _ = rt
    added = await do_install_scoring_preset(runtime, ADMIN)
    assert [r.name for r in added] == ["Visited the site", "Read an email", "Downloaded a guide", "Finished the trial",
                                       "Viewed paid features", "Viewed the payment form", "Unsubscribed"]
    assert await do_install_scoring_preset(runtime, ADMIN) == []  # installed once
    await settled(runtime)
    lead = await new_contact(runtime, name="Lead")
    names = ["session_started", "session_started", "email_opened", "guide_downloaded", "trial_finished", "trial_finished",
             "paid_features_viewed", "payment_form_viewed", "unsubscribed", "unsubscribed", "something_else"]
    await do_track(runtime, [TrackItem(lead, n) for n in names])
    # 1 + 1 + 5 + 10 + 20 (once) + 30 + 40 - 10 (once)
    assert await score_of(runtime, lead) == (97, None)
    async with runtime.db.read() as s:
        parts = {p.name: (p.points, p.times) for p in await breakdown(s, lead)}
    assert parts == {"Visited the site": (2, 2), "Read an email": (5, 1), "Downloaded a guide": (10, 1),
                     "Finished the trial": (20, 1), "Viewed paid features": (30, 1), "Viewed the payment form": (40, 1),
                     "Unsubscribed": (-10, 1)}


async def test_limits_decay_and_the_sweep(rt: tuple[Runtime, Any]) -> None:
    runtime, _ = rt
    await do_create_rule(runtime, ADMIN, "Pricing views", RuleDefinition.model_validate(
        {"when": {"kind": "event", "name": "page_viewed", "url_contains": "/pricing"}, "points": 15, "limit": "max",
         "max_times": 2, "expires_days": 7}))
    await do_create_rule(runtime, ADMIN, "Big order", RuleDefinition.model_validate(
        {"when": {"kind": "event", "name": "order_placed",
                  "where": [{"kind": "property", "key": "amount", "op": "gt", "value": 100}]}, "points": 50}))
    await settled(runtime)
    lead = await new_contact(runtime, name="Lead")
    hot = await do_create_segment(runtime, ADMIN, "Hot", Group.model_validate(
        {"conditions": [{"kind": "number", "field": "score", "op": "gt", "value": 20}]}))
    assert hot.id
    await do_track(runtime, [TrackItem(lead, "page_viewed", url="https://shop/pricing") for _ in range(3)]
                   + [TrackItem(lead, "page_viewed", url="https://shop/about"),
                      TrackItem(lead, "order_placed", {"amount": 80}), TrackItem(lead, "order_placed", {"amount": "500"})])
    assert await score_of(runtime, lead) == (30, None)  # two pricing views count; neither order is over 100
    assert await members(runtime, hot.id) == {lead}
    await do_track(runtime, [TrackItem(lead, "order_placed", {"amount": 101})])
    assert await score_of(runtime, lead) == (80, None)
    # A week later the pricing views no longer count; the score and the segment follow.
    assert await do_settle_expired_points(runtime, utcnow() + timedelta(days=6)) == 0
    assert await do_settle_expired_points(runtime, utcnow() + timedelta(days=8)) == 1
    assert await score_of(runtime, lead) == (50, None)
    await do_update_rule(runtime, ADMIN, (await rule_id(runtime, "Big order")), None, RuleDefinition.model_validate(
        {"when": {"kind": "event", "name": "order_placed",
                  "where": [{"kind": "property", "key": "amount", "op": "gt", "value": 100}]}, "points": 10}))
    await settled(runtime)
    # The rule edit recomputed from the events: +10 for the order, and the pricing views again
    # (their expiry is counted from the events' own time, so they count today).
    assert await score_of(runtime, lead) == (40, None)
    assert scoring_state(runtime).done == scoring_state(runtime).total >= 1
    assert await members(runtime, hot.id) == {lead}
    await do_sweep_segments(runtime)


async def test_card_rules_come_and_go_and_the_grade(rt: tuple[Runtime, Any]) -> None:
    runtime, _ = rt
    await do_create_rule(runtime, ADMIN, "Decision maker", RuleDefinition.model_validate(
        {"when": {"kind": "card", "conditions": [{"kind": "property", "key": "role", "op": "in_list",
                                                   "values": ["ceo", "cto"]}]}, "points": 25}))
    await do_set_grading(runtime, ADMIN, True, GradingConfig.model_validate(
        {"fit": [{"grade": "A", "conditions": [{"kind": "property", "key": "company_size", "op": "gte", "value": 100}]},
                 {"grade": "C", "conditions": [{"kind": "field", "field": "email", "op": "is_set"}]}],
         "default_fit": "E", "thresholds": [60, 20, 10]}))
    await settled(runtime)
    lead = await new_contact(runtime, name="Lead", email="lead@example.com")
    operator = Operator(id=None, name="Op", email="op@example.com", role=Role.operator, password_hash="x")
    await do_update_contact(runtime, operator, lead, properties={"role": "ceo"})
    assert await score_of(runtime, lead) == (25, "C2")
    await do_update_contact(runtime, operator, lead, properties={"company_size": 500})
    assert await score_of(runtime, lead) == (25, "A2")
    await do_update_contact(runtime, operator, lead, properties={"role": "intern"})
    assert await score_of(runtime, lead) == (0, "A4")
    await do_update_contact(runtime, operator, lead, properties={"role": "cto"})
    assert await score_of(runtime, lead) == (25, "A2")
    async with runtime.db.read() as s:
        assert [(p.points, p.times) for p in await breakdown(s, lead)] == [(25, 3)]


@pytest.mark.parametrize("bad", [
    {"when": {"kind": "event", "name": "x"}, "points": 0},
    {"when": {"kind": "event", "name": "x"}, "points": 5, "limit": "max"},
    {"when": {"kind": "event", "name": "x"}, "points": 5, "max_times": 3},
    {"when": {"kind": "card", "conditions": [{"kind": "number", "field": "score", "op": "gt", "value": 1}]}, "points": 5},
    {"when": {"kind": "card", "conditions": [{"kind": "field", "field": "email", "op": "is_set"}]}, "points": 5,
     "expires_days": 3},
    {"when": {"kind": "page"}, "points": 5},
    {"when": {"kind": "event", "name": "x"}, "points": 5, "limit": "twice"},
])
def test_bad_rules_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RuleDefinition.model_validate(bad)


async def rule_id(rt: Runtime, name: str) -> int:
    async with rt.db.read() as s:
        rule = (await s.exec(select(ScoringRule).where(ScoringRule.name == name))).one()
    assert rule.id is not None
    return rule.id


async def members(rt: Runtime, segment_id: int) -> set[int]:
    async with rt.db.read() as s:
        return set((await s.exec(select(SegmentMembership.contact_id).where(SegmentMembership.segment_id == segment_id))).all())
