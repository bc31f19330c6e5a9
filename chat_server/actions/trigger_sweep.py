"""The whens that come true with time alone, checked by the periodic sweep: inactivity (no
event E for N days), a date property's day (or its anniversary, N days before or after), and
the last N trigger emails unread. Each names its occurrence after what it saw (the last
event, the day, the last email), so a second sweep, here or in another process, adds nothing:
the unique key refuses it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ..models import Contact, Event
from ..models.trigger import TriggerSend
from ..models.types import utcnow
from ..reads import triggers as reads
from ..runtime import Runtime
from ..triggers.definition import DatePropertyWhen, EmailsNotOpenedWhen, InactivityWhen
from ..triggers.engine import Armed, Candidate, decide, needed_events, send_row
from .membership import run
from .trigger_sends import insert_sends, trigger_cache, wake

CONTACT = Contact.__table__.c  # type: ignore[attr-defined]
EVENT = Event.__table__.c  # type: ignore[attr-defined]
SEND = TriggerSend.__table__.c  # type: ignore[attr-defined]
BATCH = 1000


def _day_of(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def date_matches(when: DatePropertyWhen, value: Any, today: date) -> bool:
    day = _day_of(value)
    if day is None:
        return False
    target = today - timedelta(days=when.offset_days)
    if not when.annual:
        return day == target
    if (day.month, day.day) == (2, 29) and target.month == 2 and target.day == 28:
        try:
            date(target.year, 2, 29)
        except ValueError:
            return True  # a leap-day date is remembered on the 28th in other years
    return (day.month, day.day) == (target.month, target.day)


async def _seen(s: Any, a: Armed, now: datetime) -> list[tuple[int, str]]:
    """(contact, occurrence seed) the when holds for now."""
    w = a.definition.when
    if isinstance(w, InactivityWhen):
        last = func.max(EVENT.occurred_at)
        rows = (await run(s, select(EVENT.contact_id, func.max(EVENT.id)).where(EVENT.name == w.event)
                          .group_by(EVENT.contact_id).having(last <= now - timedelta(days=w.days))
                          .order_by(EVENT.contact_id).limit(BATCH))).all()
        return [(r[0], f"inactive:{r[1]}") for r in rows]
    if isinstance(w, DatePropertyWhen):
        today = now.date()
        found = []
        rows = (await run(s, select(CONTACT.id, CONTACT.properties).where(CONTACT.merged_into_id.is_(None)))).all()
        for contact_id, props in rows:
            if date_matches(w, (props or {}).get(w.property), today):
                found.append((contact_id, f"date:{today.isoformat()}"))
        return found[:BATCH]
    if isinstance(w, EmailsNotOpenedWhen):
        rows = (await run(s, select(SEND.contact_id, SEND.id, SEND.read_at).where(
            SEND.channel == "email", SEND.sent_at.is_not(None)).order_by(SEND.contact_id, SEND.id.desc()))).all()
        by_contact: dict[int, list[tuple[int, Any]]] = {}
        for contact_id, send_id, read_at in rows:
            by_contact.setdefault(contact_id, []).append((send_id, read_at))
        return [(cid, f"unopened:{sends[0][0]}") for cid, sends in by_contact.items()
                if len(sends) >= w.count and all(r is None for _, r in sends[:w.count])][:BATCH]
    return []


async def do_sweep_triggers(rt: Runtime, now: datetime | None = None) -> int:
    """Schedule what the time-bound whens fire now; how many sends were added."""
    now = now or utcnow()
    added = 0
    async with rt.db.write() as s:
        index = await trigger_cache(rt).get(s)
        swept = [a for a in index.all.values() if a.enabled and a.definition.when.type in
                 ("inactivity", "date_property", "emails_not_opened")]
        for a in swept:
            seen = await _seen(s, a, now)
            if not seen:
                continue
            facts = await reads.load_facts(s, sorted({c for c, _ in seen}), needed_events(a.definition), now)
            rows = [send_row(f) for contact_id, seed in seen
                    if (f := decide(Candidate(a, contact_id, seed, now), facts.get(contact_id))) is not None]
            before = await _count(s, a.id)
            await insert_sends(s, rows)
            added += await _count(s, a.id) - before
        if added:
            s.on_commit(lambda: wake(rt))
    return added


async def _count(s: Any, trigger_id: int) -> int:
    return int((await run(s, select(func.count(SEND.id)).where(SEND.trigger_id == trigger_id))).scalar_one())
