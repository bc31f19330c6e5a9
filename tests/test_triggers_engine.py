"""The trigger engine on both databases: matching in the events' transaction, the worker's
leases, rechecks and limits, control groups, goals, and explain and the dry run agreeing with
the live path. The clock is the test's: the worker is run at chosen instants."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from chat_server.actions.proactive import do_send_proactive
from chat_server.actions.site import do_ensure_site
from chat_server.actions.tracking import TrackItem, do_track
from chat_server.actions.trigger_delivery import claim
from chat_server.models import Event, SiteSettings
from chat_server.models.trigger import TriggerSend
from chat_server.models.types import utcnow
from chat_server.runtime import Runtime
from chat_server.triggers.definition import Definition
from chat_server.triggers.dry_run import dry_run
from chat_server.triggers.engine import variant_for
from chat_server.triggers.explain import explain
from chat_server.triggers.worker import TriggerWorker
from tests.inprocess import RecordingBus, runtime_for
from tests.trigger_helpers import automatic_messages, contact, frames_to, make_trigger, sends, views

pytestmark = pytest.mark.anyio


async def test_three_pricing_views_fire_once_after_the_delay_and_not_again(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    await make_trigger(runtime)
    visitor = await contact(runtime, "v-pricing")
    known = await contact(runtime, "v-known", email="known@example.com")
    await views(runtime, visitor, 2)
    await views(runtime, known, 3)
    assert await sends(runtime) == []  # two views are not three; an email is known for the other
    await views(runtime, visitor, 1, start=utcnow())
    [send] = await sends(runtime)
    assert (send.contact_id, send.state, send.variant, send.occurrence) == (visitor, "scheduled", "A", "once")
    assert send.due_at - send.matched_at == timedelta(seconds=30)

    worker = TriggerWorker(runtime)
    assert await worker.run_once(send.matched_at + timedelta(seconds=10)) == []  # not due yet
    [outcome] = await worker.run_once(send.matched_at + timedelta(seconds=31))
    assert outcome.state == "sent", outcome
    [message] = await automatic_messages(runtime)
    assert message.text == "Hi there, need help with prices?" and message.author_name == "Anna"
    assert message.client_msg_id == f"trigger-send-{send.id}"
    assert [f["message"]["text"] for f in frames_to(bus, visitor) if f["type"] == "message"] == [message.text]
    [send] = await sends(runtime)
    assert (send.state, send.channel, send.message_id) == ("sent", "widget", message.id)

    # Three more views: the limit is once, so nothing new is even scheduled.
    await views(runtime, visitor, 3, start=utcnow())
    assert len(await sends(runtime)) == 1
    assert await worker.run_once(utcnow() + timedelta(hours=1)) == []
    assert len(await automatic_messages(runtime)) == 1
    async with runtime.db.read() as s:
        timeline = (await s.exec(select(Event.name, Event.properties).where(
            Event.contact_id == visitor, Event.name == "triggered_message_sent"))).all()
    assert [p["send_id"] for _, p in timeline] == [send.id]

    # The widget's reports fill the outcome columns.
    await do_track(runtime, [TrackItem(visitor, "triggered_message_read", {"message_id": message.id})])
    [send] = await sends(runtime)
    assert send.read_at is not None and send.clicked_at is None


async def test_control_group_gets_nothing_is_counted_and_goals_bring_revenue(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    trigger = await make_trigger(runtime, control_percent=50, delay_seconds=0, when={
        "type": "event", "event": "page_viewed", "url_contains": "/pricing"},
        goal={"event": "order_placed", "within_hours": 72, "revenue_property": "amount"})
    assert trigger.id is not None
    d = Definition.model_validate(trigger.definition)
    people = [await contact(runtime, f"v-{n}") for n in range(12)]
    groups = {p: variant_for(trigger.id, p, d) for p in people}
    assert {"control", "A"} <= set(groups.values())  # the hash splits these twelve both ways
    for p in people:
        await views(runtime, p, 1)
    rows = {r.contact_id: r for r in await sends(runtime)}
    assert {p: r.variant for p, r in rows.items()} == groups  # sticky: the same split the hash gives
    assert {r.state for r in rows.values() if r.variant == "control"} == {"control"}
    await TriggerWorker(runtime).run_once()
    messages = await automatic_messages(runtime)
    treated = [p for p in people if groups[p] == "A"]
    assert len(messages) == len(treated)
    for p in people:
        got = [f for f in frames_to(bus, p) if f["type"] == "message"]
        assert len(got) == (1 if p in treated else 0)

    buyer, control_buyer = treated[0], next(p for p in people if groups[p] == "control")
    for p, amount in ((buyer, 120.5), (control_buyer, 80)):
        await do_track(runtime, [TrackItem(p, "order_placed", {"amount": amount})])
    await do_track(runtime, [TrackItem(buyer, "order_placed", {"amount": 999})])  # the first goal counts
    rows = {r.contact_id: r for r in await sends(runtime)}
    assert (rows[buyer].revenue, rows[control_buyer].revenue) == (120.5, 80.0)
    assert rows[buyer].goal_at is not None and rows[control_buyer].goal_at is not None
    assert sum(1 for r in rows.values() if r.goal_at is not None) == 2
    async with runtime.db.read() as s:
        goals = (await s.exec(select(Event.properties).where(Event.name == "goal_reached"))).all()
    assert sorted(g["revenue"] for g in goals) == [80.0, 120.5]


async def test_a_restart_during_the_delay_still_sends_exactly_once(db_url: str, rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    await make_trigger(runtime)
    visitor = await contact(runtime, "v-restart")
    await views(runtime, visitor, 3)
    [send] = await sends(runtime)
    # The process holding the lease dies after sending, before recording it.
    first = TriggerWorker(runtime)
    due = send.due_at + timedelta(seconds=1)
    assert await claim(runtime, first.owner, due) == [send.id]
    await do_send_proactive(runtime, visitor, "Hi there, need help with prices?", client_msg_id=f"trigger-send-{send.id}")
    await runtime.db.dispose()

    restarted = runtime_for(runtime.settings, RecordingBus())
    try:
        second = TriggerWorker(restarted)
        assert await second.run_once(due) == []  # the dead process's lease has not expired yet
        outcomes = await second.run_once(due + timedelta(seconds=61))
        assert [o.state for o in outcomes] == ["sent"]
        assert len(await automatic_messages(restarted)) == 1  # the retry found the message it had sent
        [send] = await sends(restarted)
        assert send.state == "sent"
        assert await TriggerWorker(restarted).run_once(due + timedelta(seconds=200)) == []
    finally:
        await restarted.db.dispose()


async def test_two_workers_at_once_send_each_message_once(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    await make_trigger(runtime, delay_seconds=0)
    people = [await contact(runtime, f"v-race-{n}") for n in range(8)]
    for p in people:
        await views(runtime, p, 3)
    workers = [TriggerWorker(runtime), TriggerWorker(runtime)]
    results = await asyncio.gather(*(w.run_once() for w in workers))
    sent = [o for r in results for o in r if o.state == "sent"]
    assert len(sent) == len(people)
    messages = await automatic_messages(runtime)
    assert sorted(m.conversation_id for m in messages) == sorted({m.conversation_id for m in messages})
    assert len(messages) == len(people)


async def _cap(runtime: Runtime, per_day: int) -> None:
    await do_ensure_site(runtime)
    async with runtime.db.write() as s:
        await s.exec(update(SiteSettings).values(auto_messages_per_day=per_day))  # type: ignore[call-overload]


async def test_the_daily_cap_holds_across_two_triggers(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    await _cap(runtime, 1)
    await make_trigger(runtime, name="first", delay_seconds=0)
    await make_trigger(runtime, name="second", delay_seconds=0, when={
        "type": "event", "event": "page_viewed", "url_contains": "/pricing"})
    visitor = await contact(runtime, "v-cap")
    await views(runtime, visitor, 3)
    assert len(await sends(runtime)) == 2
    outcomes = await TriggerWorker(runtime).run_once()
    assert sorted(o.state for o in outcomes) == ["cancelled", "sent"]
    assert any("site daily cap" in (o.reason or "") for o in outcomes)
    assert len(await automatic_messages(runtime)) == 1


async def test_working_hours_defer_a_send_to_the_next_opening(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    await make_trigger(runtime, delay_seconds=0, hours={"timezone": "Europe/Moscow", "days": {
        "mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]]}})
    visitor = await contact(runtime, "v-hours")
    await views(runtime, visitor, 3)
    saturday = datetime.now(UTC) + timedelta(days=14)
    saturday = (saturday - timedelta(days=(saturday.weekday() - 5) % 7)).replace(hour=9, minute=0, second=0, microsecond=0)
    [outcome] = await TriggerWorker(runtime).run_once(saturday)
    assert outcome.state == "deferred"
    [send] = await sends(runtime)
    monday_nine_moscow = (saturday + timedelta(days=2)).replace(hour=6)  # 09:00 MSK is 06:00 UTC
    assert send.state == "scheduled" and send.due_at == monday_nine_moscow, send.due_at
    assert "outside working hours" in (send.reason or "")
    assert await TriggerWorker(runtime).run_once(monday_nine_moscow - timedelta(minutes=1)) == []
    [outcome] = await TriggerWorker(runtime).run_once(monday_nine_moscow + timedelta(minutes=1))
    assert outcome.state == "sent"
    assert len([f for f in frames_to(bus, visitor) if f["type"] == "message"]) == 1


async def test_a_failing_template_sends_nothing_and_says_why(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    await make_trigger(runtime, delay_seconds=0, variants=[
        {"name": "A", "weight": 100, "text": "You owe {{ 100 | divided_by: contact.properties.zero }}"}])
    visitor = await contact(runtime, "v-template")
    await views(runtime, visitor, 3)
    [outcome] = await TriggerWorker(runtime).run_once()
    assert outcome.state == "failed"
    [send] = await sends(runtime)
    assert send.state == "failed" and send.reason is not None and "template" in send.reason and "divided_by" in send.reason
    assert await automatic_messages(runtime) == []
    assert [f for f in frames_to(bus, visitor) if f["type"] == "message"] == []


async def test_explain_names_the_failing_condition(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    trigger = await make_trigger(runtime)
    known = await contact(runtime, "v-explain", email="ann@example.com")
    await views(runtime, known, 3)
    async with runtime.db.read() as s:
        found = await explain(s, trigger, known, utcnow())
    assert found is not None
    assert found["failing"] == ["audience.filter[0] field=email op=not_set"], found["failing"]
    line = next(c for c in found["conditions"] if c["condition"].startswith("audience.filter[0]"))
    assert line == {"condition": "audience.filter[0] field=email op=not_set", "ok": False, "value": "'ann@example.com'"}
    when = next(c for c in found["conditions"] if c["condition"].startswith("when:"))
    assert when["ok"] and when["value"].startswith("3 matching")
    assert found["last_fired"] is None and found["hours"]["ok"] and found["channel"]["chosen"] == "widget"


async def test_the_dry_run_counts_what_the_live_path_does(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    trigger = await make_trigger(runtime, delay_seconds=0, control_percent=20, limits={
        "frequency": "every_time"}, when={"type": "event", "event": "page_viewed", "url_contains": "/pricing",
                                          "count": 2, "within_minutes": 10})
    plan = [("a", 3, None, 1), ("b", 1, None, 1), ("c", 4, "c@example.com", 1), ("d", 2, None, 20), ("e", 5, None, 2)]
    for key, n, email, gap in plan:
        who = await contact(runtime, f"v-dry-{key}", email=email)
        await views(runtime, who, n, gap=timedelta(minutes=gap))
        await views(runtime, who, 1, url="https://shop.example/about")
    live = await sends(runtime, trigger.id)
    async with runtime.db.read() as s:
        result = await dry_run(s, Definition.model_validate(trigger.definition), 7, utcnow(), trigger.id or 0)
    assert result["fired"] == len(live) == 2 + 4  # a: views 2 and 3; e: views 2..5 (d's are 20 min apart)
    assert result["contacts"] == len({r.contact_id for r in live}) == 2
    assert result["control"] == sum(1 for r in live if r.state == "control")


async def test_a_paused_trigger_cancels_its_waiting_sends(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    trigger = await make_trigger(runtime)
    visitor = await contact(runtime, "v-paused")
    await views(runtime, visitor, 3)
    async with runtime.db.write() as s:
        trigger.enabled = False
        s.add(trigger)
    [outcome] = await TriggerWorker(runtime).run_once(utcnow() + timedelta(minutes=1))
    assert outcome.state == "cancelled" and "paused" in (outcome.reason or "")
    assert await automatic_messages(runtime) == []
    async with runtime.db.read() as s:
        assert (await s.get(TriggerSend, (await sends(runtime))[0].id)).state == "cancelled"  # type: ignore[union-attr]


async def test_segment_entered_and_property_changed_fire_and_the_dry_run_agrees(rt: tuple[Runtime, RecordingBus]) -> None:
    from chat_server.actions.properties import do_change_properties
    from chat_server.actions.segments import do_create_segment
    from chat_server.behaviour.properties import PropertyOperation
    from chat_server.behaviour.segments import Group
    from chat_server.models import Operator, Role

    runtime, _ = rt
    admin = Operator(name="Admin", email="admin@example.com", role=Role.admin, password_hash="x")
    segment = await do_create_segment(runtime, admin, "Pricing viewers", Group.model_validate({"conditions": [
        {"kind": "event", "name": "page_viewed", "url_contains": "/pricing", "op": "at_least", "count": 2}]}))
    entered = await make_trigger(runtime, name="entered", delay_seconds=0, audience={}, limits={"frequency": "every_time"},
                                 when={"type": "segment_entered", "segment_id": segment.id})
    changed = await make_trigger(runtime, name="plan", delay_seconds=0, audience={},
                                 when={"type": "property_changed", "property": "plan"})
    people = [await contact(runtime, f"v-seg-{n}") for n in range(3)]
    await views(runtime, people[0], 2)
    await views(runtime, people[1], 1)
    await views(runtime, people[2], 3)
    assert sorted(r.contact_id for r in await sends(runtime, entered.id)) == [people[0], people[2]]
    async with runtime.db.read() as s:
        result = await dry_run(s, Definition.model_validate(entered.definition), 7, utcnow(), entered.id or 0)
    assert (result["fired"], result["contacts"]) == (2, 2)

    await do_change_properties(runtime, people[1], [PropertyOperation(op="set", key="plan", value="pro")])
    await do_change_properties(runtime, people[1], [PropertyOperation(op="set", key="other", value=1)])
    assert [r.contact_id for r in await sends(runtime, changed.id)] == [people[1]]


async def test_a_segment_entered_with_time_alone_fires_from_the_sweep(rt: tuple[Runtime, RecordingBus]) -> None:
    # Nobody does anything to enter "no session in 14 days": the sweep finds them, and the
    # re-engagement message is scheduled once.
    from chat_server.actions.membership import do_sweep_segments
    from chat_server.actions.segments import do_create_preset_segment
    from chat_server.models import Operator, Role

    runtime, _ = rt
    admin = Operator(name="Admin", email="admin@example.com", role=Role.admin, password_hash="x")
    dormant = await do_create_preset_segment(runtime, admin, "dormant")
    come_back = await make_trigger(runtime, name="come back", delay_seconds=0, audience={},
                                   when={"type": "segment_entered", "segment_id": dormant.id})
    person = await contact(runtime, "v-dormant")
    await do_track(runtime, [TrackItem(person, "session_started")])
    assert await sends(runtime, come_back.id) == []
    assert await do_sweep_segments(runtime, utcnow() + timedelta(days=13)) == []
    assert await sends(runtime, come_back.id) == []
    entered = await do_sweep_segments(runtime, utcnow() + timedelta(days=15))
    assert [(c.contact_id, c.entered) for c in entered] == [(person, True)]
    assert [r.contact_id for r in await sends(runtime, come_back.id)] == [person]
    assert await do_sweep_segments(runtime, utcnow() + timedelta(days=16)) == []  # still inside: nothing new
    assert len(await sends(runtime, come_back.id)) == 1


async def test_page_time_sends_only_to_a_visitor_still_on_the_page(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    await make_trigger(runtime, delay_seconds=0, audience={}, when={"type": "page_time", "url_contains": "/pricing",
                                                                   "seconds": 30})
    stays, leaves = await contact(runtime, "v-stays"), await contact(runtime, "v-leaves")
    now = utcnow()
    await views(runtime, stays, 1, start=now)
    await views(runtime, leaves, 1, start=now)
    await views(runtime, leaves, 1, url="https://shop.example/about", start=now + timedelta(seconds=5))
    rows = await sends(runtime)
    assert {r.contact_id for r in rows} == {stays, leaves}
    assert all(r.due_at - r.matched_at == timedelta(seconds=30) for r in rows)
    outcomes = await TriggerWorker(runtime).run_once(now + timedelta(seconds=31))
    assert sorted(o.state for o in outcomes) == ["cancelled", "sent"]
    cancelled = next(r for r in await sends(runtime) if r.contact_id == leaves)
    assert cancelled.state == "cancelled" and "still on a page containing '/pricing'" in (cancelled.reason or "")


async def test_two_sends_racing_for_the_last_place_under_the_cap(rt: tuple[Runtime, RecordingBus]) -> None:
    from chat_server.actions.trigger_delivery import deliver

    runtime, _ = rt
    await _cap(runtime, 1)
    await make_trigger(runtime, name="first", delay_seconds=0)
    await make_trigger(runtime, name="second", delay_seconds=0, when={
        "type": "event", "event": "page_viewed", "url_contains": "/pricing"})
    visitor = await contact(runtime, "v-race-cap")
    await views(runtime, visitor, 3)
    a, b = TriggerWorker(runtime), TriggerWorker(runtime)
    now = utcnow()
    [first] = await claim(runtime, a.owner, now, limit=1)
    [second] = await claim(runtime, b.owner, now, limit=1)
    outcomes = await asyncio.gather(deliver(runtime, first, a.owner, now), deliver(runtime, second, b.owner, now))
    assert sorted(o.state for o in outcomes) == ["cancelled", "sent"], outcomes
    assert len(await automatic_messages(runtime)) == 1
    cancelled = next(r for r in await sends(runtime) if r.state == "cancelled")
    assert cancelled.sent_at is None and "site daily cap" in (cancelled.reason or "")
