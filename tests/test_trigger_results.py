"""A trigger's results on both databases: the counts per variant and control from stored sends
(two aggregate queries), the window, the series per day, the comparison; and the endpoint:
staff (sales too) read it, bad input is refused clearly."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any

import pytest

from chat_server.actions.tracking import TrackItem, do_track
from chat_server.models import Contact, Trigger, TriggerSend
from chat_server.models.types import utcnow
from chat_server.reads.trigger_results import trigger_results
from chat_server.runtime import Runtime
from chat_server.triggers import stats
from chat_server.triggers.worker import TriggerWorker
from tests.harness import ChatServer, api, create_operator, login
from tests.inprocess import QueryCounter, RecordingBus, make_runtime
from tests.trigger_helpers import contact, make_trigger, sends, views

pytestmark = pytest.mark.anyio
NOW = utcnow()
OUTCOMES = ("delivered", "read", "clicked", "replied", "unsubscribed")


@dataclass
class Row:
    variant: str
    state: str
    days_ago: float
    outcomes: tuple[str, ...] = ()
    goal: bool = False
    revenue: float | None = None


def definition(*variants: str) -> dict[str, Any]:
    weight = 100 // len(variants)
    return {"when": {"type": "event", "event": "page_viewed"}, "control_percent": 20,
            "variants": [{"name": v, "weight": weight + (100 - weight * len(variants) if i == 0 else 0), "text": "Hi"}
                         for i, v in enumerate(variants)]}


def random_rows(rng: random.Random) -> list[Row]:
    """Sends of A and B and the control over five days, with every state and outcome; goals also
    on cancelled and failed sends, which must not count (they are in no group)."""
    rows: list[Row] = []
    for variant, n, rate in (("A", 260, 0.2), ("B", 140, 0.1), ("control", 150, 0.06)):
        for _ in range(n):
            state = "control" if variant == "control" else rng.choice(["sent"] * 6 + ["scheduled", "cancelled", "failed"])
            goal = rng.random() < rate
            outcomes = tuple(o for o in OUTCOMES if state == "sent" and rng.random() < 0.5)
            rows.append(Row(variant, state, rng.uniform(0, 5), outcomes, goal, round(rng.uniform(1, 100), 2) if goal else None))
    # A variant the trigger no longer has still counts.
    rows += [Row("Old", "sent", 1, ("delivered",), True, 7.0), Row("Old", "sent", 1)]
    return rows


async def seed(rt: Runtime, rows: list[Row], *variants: str, name: str = "") -> int:
    async with rt.db.write() as s:
        trigger = Trigger(name=name or f"Pricing {uuid.uuid4().hex[:6]}", definition=definition(*variants))
        other = Trigger(name="Another", definition=definition("A"))
        contact = Contact(name="Someone")
        s.add_all([trigger, other, contact])
        await s.flush()
        assert trigger.id and other.id and contact.id
        for i, r in enumerate(rows):
            matched = NOW - timedelta(days=r.days_ago)
            sent = r.state == "sent"
            s.add(TriggerSend(
                trigger_id=trigger.id, contact_id=contact.id, occurrence=f"o{i}", variant=r.variant, state=r.state,
                matched_at=matched, due_at=matched, sent_at=matched if sent else None, channel="widget" if sent else None,
                **{f"{o}_at": matched for o in r.outcomes},
                goal_at=matched + timedelta(hours=1) if r.goal else None, revenue=r.revenue))
        # Neither another trigger's sends nor ones matched before the window count.
        s.add(TriggerSend(trigger_id=other.id, contact_id=contact.id, occurrence="x", variant="A", state="sent",
                          matched_at=NOW, goal_at=NOW))
        s.add(TriggerSend(trigger_id=trigger.id, contact_id=contact.id, occurrence="old", variant="A", state="sent",
                          matched_at=NOW - timedelta(days=400), goal_at=NOW - timedelta(days=400)))
        return trigger.id


def expected(rows: list[Row], variant: str, days: int) -> dict[str, Any]:
    start = (NOW - timedelta(days=days - 1)).date()
    mine = [r for r in rows if r.variant == variant and (NOW - timedelta(days=r.days_ago)).astimezone(UTC).date() >= start]
    counted = [r for r in mine if r.goal and r.state in ("sent", "control")]
    out: dict[str, Any] = {"variant": variant, "matched": len(mine), "sent": sum(r.state == "sent" for r in mine),
                           "held_out": sum(r.state == "control" for r in mine),
                           "goal": len(counted), "revenue": pytest.approx(sum(r.revenue or 0 for r in counted))}
    for o in OUTCOMES:
        out[o] = sum(o in r.outcomes for r in mine)
    return out


def as_dict(arm: Any) -> dict[str, Any]:
    return {k: getattr(arm, k) for k in ("variant", "matched", "sent", "held_out", "goal", "revenue", *OUTCOMES)}


@pytest.mark.parametrize("days", [30, 3, 1])
async def test_the_counts_per_variant_and_control_come_from_the_stored_sends(
        counted_rt: tuple[Runtime, RecordingBus, QueryCounter], days: int) -> None:
    rt, _, counter = counted_rt
    rows = random_rows(random.Random(days))
    trigger_id = await seed(rt, rows, "A", "B", "Fresh")
    counter.reset()
    r = await trigger_results(rt.db, trigger_id, days, NOW)
    assert counter.count == 3  # the trigger, the totals, the days: no query per send
    assert r is not None
    # The definition's variants in its order (one with no sends yet), then the retired one.
    names = ["A", "B", "Fresh"] + (["Old"] if days >= 3 else [])
    assert [a.variant for a in r.variants] == names
    for arm in r.variants:
        assert as_dict(arm) == expected(rows, arm.variant, days)
    assert as_dict(r.control) == expected(rows, "control", days)
    control = expected(rows, "control", days)
    assert r.control.conversion == (control["goal"] / control["held_out"] if control["held_out"] else None)
    for arm, (name, cmp) in zip(r.variants, r.comparison, strict=True):
        assert name == arm.variant
        assert arm.conversion == (arm.goal / arm.sent if arm.sent else None)
        assert cmp == stats.compare(arm.goal, arm.sent, r.control.goal, r.control.held_out)
    # The series is the same cohort by day: it adds up to the table.
    by_variant: Counter[tuple[str, str]] = Counter()
    for d in r.series:
        assert r.since.date() <= d.day <= NOW.date()
        by_variant[(d.variant, "matched")] += d.matched
        by_variant[(d.variant, "sent")] += d.sent
        by_variant[(d.variant, "goal")] += d.goal
    for arm in [*r.variants, r.control]:
        assert (by_variant[(arm.variant, "matched")], by_variant[(arm.variant, "sent")], by_variant[(arm.variant, "goal")]) == (
            arm.matched, arm.sent, arm.goal)
    start = r.since.date()
    assert {d.day for d in r.series} == {(NOW - timedelta(days=x.days_ago)).date() for x in rows
                                         if (NOW - timedelta(days=x.days_ago)).date() >= start}
    assert [(d.day, d.variant) for d in r.series] == sorted((d.day, d.variant) for d in r.series)


async def test_with_enough_data_the_comparison_says_what_the_message_changed(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    rows = ([Row("A", "sent", 0.5, goal=i < 40, revenue=10.0 if i < 40 else None) for i in range(200)]
            + [Row("control", "control", 0.5, goal=i < 10) for i in range(100)])
    trigger_id = await seed(runtime, rows, "A")
    r = await trigger_results(runtime.db, trigger_id, 30, NOW)
    assert r is not None
    (name, cmp), = r.comparison
    assert (name, cmp.enough_data) == ("A", True)
    assert cmp.difference.estimate == pytest.approx(0.2 - 0.1)
    assert cmp.lift.estimate == pytest.approx(1.0)  # twice the control's conversion: +100 %
    assert cmp.difference.low is not None and cmp.difference.low > 0  # the interval excludes "no effect"
    assert r.variants[0].revenue == pytest.approx(400.0) and r.control.revenue == 0.0


async def test_a_trigger_with_no_sends_and_a_missing_trigger(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    trigger_id = await seed(runtime, [], "A", "B")
    r = await trigger_results(runtime.db, trigger_id, 30, NOW)
    assert r is not None
    assert [(a.variant, a.matched, a.conversion) for a in r.variants] == [("A", 0, None), ("B", 0, None)]
    assert r.control.matched == 0 and r.series == []
    assert all(not c.enough_data and c.difference.estimate is None for _, c in r.comparison)
    assert await trigger_results(runtime.db, 2**62, 30, NOW) is None


# --- the endpoint ------------------------------------------------------------------------------


async def test_staff_read_the_results_and_bad_input_is_refused(server: ChatServer) -> None:
    rt, _ = await make_runtime(server.database_url)
    try:
        rows = ([Row("A", "sent", 0.2, ("delivered", "read"), goal=i < 30, revenue=12.5 if i < 30 else None)
                 for i in range(150)]
                + [Row("control", "control", 1.2, goal=i < 8) for i in range(120)])
        trigger_id = await seed(rt, rows, "A")
    finally:
        await rt.db.dispose()
    admin = await login(server)
    sales = await create_operator(server, admin, f"sales-{uuid.uuid4().hex[:6]}@example.com", role="sales")
    async with api(server, sales) as http:
        r = await http.get(f"/triggers/{trigger_id}/results", params={"days": "7"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["days"] == 7 and body["trigger_id"] == trigger_id
        assert body["min_per_group"] == stats.MIN_PER_ARM and body["min_goals_per_group"] == stats.MIN_CONVERSIONS_PER_ARM
        (a,) = body["variants"]
        assert {k: a[k] for k in ("variant", "matched", "sent", "delivered", "read", "clicked", "goal", "revenue")} == {
            "variant": "A", "matched": 150, "sent": 150, "delivered": 150, "read": 150, "clicked": 0, "goal": 30,
            "revenue": 375.0}
        assert a["conversion"] == pytest.approx(0.2)
        assert body["control"]["matched"] == 120 and body["control"]["sent"] == 0 and body["control"]["goal"] == 8
        assert body["control"]["conversion"] == pytest.approx(8 / 120)
        (cmp,) = body["comparison"]
        expect = stats.compare(30, 150, 8, 120)
        assert cmp["enough_data"] is True
        assert cmp["difference"] == pytest.approx({"estimate": expect.difference.estimate, "low": expect.difference.low,
                                                   "high": expect.difference.high})
        assert cmp["lift"]["estimate"] == pytest.approx(0.2 / (8 / 120) - 1)
        yesterday = str((NOW - timedelta(days=1.2)).date())
        series = {(d["day"], d["variant"]): (d["matched"], d["sent"], d["goal"]) for d in body["series"]}
        assert series[(str((NOW - timedelta(days=0.2)).date()), "A")] == (150, 150, 30)
        assert series[(yesterday, "control")] == (120, 0, 8)
        assert {d["day"] for d in body["series"]} == {str((NOW - timedelta(days=0.2)).date()), yesterday}
        # Bad input: a clear 422 or 404, never a 500.
        for days in ("0", "367", "abc", "-1", str(2**63)):
            r = await http.get(f"/triggers/{trigger_id}/results", params={"days": days})
            assert r.status_code == 422, (days, r.text)
        r = await http.get(f"/triggers/{trigger_id}/results", params={"weeks": "2"})
        assert r.status_code == 422, r.text
        for missing in (987654321, 2**63 - 1, 2**63):
            r = await http.get(f"/triggers/{missing}/results")
            assert r.status_code == 404, (missing, r.text)
    async with api(server) as http:
        assert (await http.get(f"/triggers/{trigger_id}/results")).status_code == 401


async def test_results_of_sends_the_engine_made_and_goals_it_attributed(rt: tuple[Runtime, RecordingBus]) -> None:
    """Through the trigger engine itself: matches split between A and the control, the worker
    sends A's, buyers' orders become goals with revenue; the results count exactly that."""
    runtime, _ = rt
    trigger = await make_trigger(runtime, control_percent=50, delay_seconds=0,
                                 when={"type": "event", "event": "page_viewed", "url_contains": "/pricing"},
                                 goal={"event": "order_placed", "within_hours": 72, "revenue_property": "amount"})
    assert trigger.id is not None
    people = [await contact(runtime, f"results-{n}") for n in range(16)]
    for p in people:
        await views(runtime, p, 1)
    await TriggerWorker(runtime).run_once()
    rows = {r.contact_id: r for r in await sends(runtime, trigger.id)}
    treated = [p for p in people if rows[p].variant == "A"]
    # What the worker sent (the engine decides; a send it cancelled or failed counts as matched only).
    sent = [p for p in treated if rows[p].state == "sent"]
    held = [p for p in people if rows[p].variant == "control"]
    assert sent and held, {p: (r.variant, r.state, r.reason) for p, r in rows.items()}
    buyers = {sent[0]: 120.5, held[0]: 80.0, **({sent[1]: 10.0} if len(sent) > 1 else {})}
    for p, amount in buyers.items():
        await do_track(runtime, [TrackItem(p, "order_placed", {"amount": amount})])
    r = await trigger_results(runtime.db, trigger.id, 30)
    assert r is not None
    (a,) = r.variants
    a_goals = [p for p in buyers if p in treated]
    assert (a.variant, a.matched, a.sent, a.goal) == ("A", len(treated), len(sent), len(a_goals))
    assert a.revenue == pytest.approx(sum(buyers[p] for p in a_goals))
    assert (r.control.matched, r.control.held_out, r.control.sent, r.control.goal, r.control.revenue) == (
        len(held), len(held), 0, 1, 80.0)
    (name, cmp), = r.comparison
    assert name == "A" and not cmp.enough_data
    assert cmp.difference.estimate == pytest.approx(len(a_goals) / len(sent) - 1 / len(held))
    assert [(d.variant, d.matched, d.sent, d.goal) for d in r.series] == [
        ("A", len(treated), len(sent), len(a_goals)), ("control", len(held), 0, 1)]
