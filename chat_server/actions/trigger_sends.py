"""Scheduling trigger sends where behaviour is stored, and filling their outcomes.

Called at the end of the tracking pipeline's `react` (every event, property change and
segment change passes there), inside the same transaction as the events: a send exists
exactly when the event that fired it does. The unique key (trigger, contact, occurrence)
makes a second copy of a send impossible, whatever races. The worker
(triggers/worker.py) sends them when due.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import WriteSession
from ..models import Event
from ..models.trigger import TriggerSend
from ..reads import triggers as reads
from ..runtime import Runtime
from ..triggers.definition import parse_definition
from ..triggers.engine import (
    Armed,
    Candidate,
    change_fires,
    decide,
    event_window,
    may_fire,
    send_row,
    triggering_event,
)
from .membership import Touch, dialect_of, run

if TYPE_CHECKING:
    from .membership import MembershipChange
    from .scoring import Happened

SEND = TriggerSend.__table__.c  # type: ignore[attr-defined]
# The widget's (and reach's email) reports: each fills its column of the send it names.
OUTCOMES = {"triggered_message_delivered": "delivered_at", "triggered_message_read": "read_at",
            "triggered_message_clicked": "clicked_at", "triggered_message_replied": "replied_at",
            "triggered_message_unsubscribed": "unsubscribed_at"}


class TriggerIndex:
    """The live triggers, parsed once, indexed by what fires them and by their goals."""

    def __init__(self, armed: Iterable[Armed]) -> None:
        self.all = {a.id: a for a in armed}
        self.by_event: dict[str, list[Armed]] = {}
        self.by_change: list[Armed] = []
        self.by_goal: dict[str, list[Armed]] = {}
        self.windows = {a.id: event_window(a.definition) for a in self.all.values()}
        for a in self.all.values():
            d = a.definition
            if d.goal is not None:
                self.by_goal.setdefault(d.goal.event, []).append(a)
            if not a.enabled:
                continue
            if (name := triggering_event(d.when)) is not None:
                self.by_event.setdefault(name, []).append(a)
            elif d.when.type in ("segment_entered", "segment_left", "property_changed"):
                self.by_change.append(a)


class TriggerCache:
    def __init__(self) -> None:
        self.stamp: tuple[Any, ...] | None = None
        self.index = TriggerIndex([])

    async def get(self, s: AsyncSession) -> TriggerIndex:
        stamp = await reads.stamp(s)
        if stamp != self.stamp:
            self.index = TriggerIndex(armed_of(t) for t in await reads.live_triggers(s))
            self.stamp = stamp
        return self.index


def armed_of(t: Any) -> Armed:
    return Armed(t.id, t.name, t.enabled, t.version, parse_definition(t.definition))


def trigger_cache(rt: Runtime) -> TriggerCache:
    if rt.triggers is None:
        rt.triggers = TriggerCache()
    return rt.triggers


def candidates(index: TriggerIndex, happened: Sequence[Happened], changes: Sequence[MembershipChange],
               touches: dict[int, Touch], now: datetime) -> list[Candidate]:
    found = [Candidate(a, ev.contact_id, str(ev.event_id), ev.occurred_at, ev.name, ev.url, ev.properties)
             for ev in happened for a in index.by_event.get(ev.name, ())]
    if index.by_change:
        by_contact: dict[int, list[tuple[int, bool]]] = {}
        for ch in changes:
            by_contact.setdefault(ch.contact_id, []).append((ch.segment_id, ch.entered))
        for contact_id in set(by_contact) | {cid for cid, t in touches.items() if t.properties}:
            props = touches[contact_id].properties if contact_id in touches else set()
            for a in index.by_change:
                seed = change_fires(a.definition.when, by_contact.get(contact_id, []), props)
                if seed is not None:
                    # The change's moment names the occurrence (the timeline's segment event has it too).
                    found.append(Candidate(a, contact_id, f"{seed}:{int(now.timestamp())}", now, None))
    return found


def event_reads(index: TriggerIndex, found: Sequence[Candidate]) -> dict[str, datetime | None]:
    """The events these candidates' decisions read, by name, from when (None: all): a count
    over the last 10 minutes does not read a contact's whole history."""
    out: dict[str, datetime | None] = {}
    for c in found:
        for name, back in index.windows[c.trigger.id].items():
            since = None if back is None else c.at - back
            if name not in out:
                out[name] = since
            elif (known := out[name]) is not None:
                out[name] = None if since is None else min(known, since)
    return out


async def insert_sends(s: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    make = pg_insert if dialect_of(s) == "postgresql" else sqlite_insert
    await run(s, make(TriggerSend.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
        index_elements=["trigger_id", "contact_id", "occurrence"]), rows)


async def react(s: AsyncSession, rt: Runtime, touches: dict[int, Touch], happened: Sequence[Happened],
                changes: Sequence[MembershipChange], now: datetime) -> None:
    """Schedule what these events and changes fire; record the outcomes and goals they are."""
    index = await trigger_cache(rt).get(s)
    if not index.all:
        return
    await _outcomes(s, happened)
    await _goals(s, index, happened)
    found = [c for c in candidates(index, happened, changes, touches, now) if may_fire(c)]
    if not found:
        return
    windows = event_reads(index, found)
    facts = await reads.load_facts(s, sorted({c.contact_id for c in found}), set(windows), now,
                                   since={name: at for name, at in windows.items() if at is not None})
    rows = [send_row(f) for c in found if (f := decide(c, facts.get(c.contact_id))) is not None]
    await insert_sends(s, rows)
    if rows and isinstance(s, WriteSession):
        s.on_commit(lambda: wake(rt))


def wake(rt: Runtime) -> None:
    rt.triggers_due.set()


async def _outcomes(s: AsyncSession, happened: Sequence[Happened]) -> None:
    for ev in happened:
        column = OUTCOMES.get(ev.name)
        message_id = ev.properties.get("message_id")
        if column is None or not isinstance(message_id, int) or isinstance(message_id, bool):
            continue
        await run(s, update(TriggerSend.__table__).where(  # type: ignore[attr-defined]
            SEND.message_id == message_id, SEND[column].is_(None)).values({column: ev.occurred_at}))


def _revenue(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) < 1e15 else None


async def _goals(s: AsyncSession, index: TriggerIndex, happened: Sequence[Happened]) -> None:
    """The first goal event within the window after the send (after the match, for controls)."""
    from ..behaviour.snapshot import py_property

    for ev in happened:
        for a in index.by_goal.get(ev.name, ()):
            goal = a.definition.goal
            assert goal is not None
            if not all(py_property(p, ev.properties, ev.occurred_at) for p in goal.where):
                continue
            since = ev.occurred_at - timedelta(hours=goal.within_hours)
            row = (await run(s, select(SEND.id, SEND.variant).where(
                SEND.trigger_id == a.id, SEND.contact_id == ev.contact_id, SEND.goal_at.is_(None), or_(
                    and_(SEND.state == "sent", SEND.sent_at <= ev.occurred_at, SEND.sent_at >= since),
                    and_(SEND.state == "control", SEND.matched_at <= ev.occurred_at, SEND.matched_at >= since)),
            ).order_by(SEND.id).limit(1))).first()
            if row is None:
                continue
            revenue = _revenue(ev.properties.get(goal.revenue_property)) if goal.revenue_property else None
            await run(s, update(TriggerSend.__table__).where(SEND.id == row[0], SEND.goal_at.is_(None)).values(  # type: ignore[attr-defined]
                goal_at=ev.occurred_at, revenue=revenue))
            await run(s, insert(Event.__table__), [{  # type: ignore[attr-defined]
                "contact_id": ev.contact_id, "name": "goal_reached", "url": None, "occurred_at": ev.occurred_at,
                "external_id": None, "properties": {"trigger_id": a.id, "trigger": a.name, "send_id": row[0],
                                                    "variant": row[1], "goal": goal.event, "revenue": revenue}}])

