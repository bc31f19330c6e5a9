"""The whens that come true with time alone, checked by the periodic sweep: inactivity (no
event E for N days), a date property's day (or its anniversary, N days before or after), and
the last N trigger emails unread. Each names its occurrence after what it saw (the last
event, the day, the last email), so a second sweep, here or in another process, adds nothing:
the unique key refuses it.

The sweep runs every minute in every process, so it must stay cheap and never starve: what it
finds is read outside the write transaction (SQLite's one writer keeps ingesting meanwhile),
a date property is matched in SQL first, contacts already scheduled for the occurrence are
dropped before their facts are read, and every candidate is handled, a batch at a time, not
just the first batch (one refused by its audience would otherwise hold back everyone after it
for good)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ..behaviour.filter_sql import property_text
from ..models import Contact, Event
from ..models.trigger import TriggerSend
from ..models.types import utcnow
from ..reads import triggers as reads
from ..runtime import Runtime
from ..triggers.definition import DatePropertyWhen, EmailsNotOpenedWhen, InactivityWhen
from ..triggers.engine import Armed, Candidate, decide, needed_events, occurrence, send_row
from .membership import dialect_of, run
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
    if (day.month, day.day) == (2, 29) and _leap_day_remembered(target):
        return True  # a leap-day date is remembered on the 28th in other years
    return (day.month, day.day) == (target.month, target.day)


def _leap_day_remembered(target: date) -> bool:
    if (target.month, target.day) != (2, 28):
        return False
    try:
        date(target.year, 2, 29)
    except ValueError:
        return True
    return False


def _date_clause(s: Any, w: DatePropertyWhen, today: date) -> Any:
    """The contacts whose property can match today, narrowed in SQL by its text (`date_matches`
    decides): the whole date, or its month and day."""
    text = property_text(dialect_of(s), w.property)
    target = today - timedelta(days=w.offset_days)
    if not w.annual:
        return func.substr(text, 1, 10) == target.isoformat()
    days = [f"{target.month:02d}-{target.day:02d}", *(["02-29"] if _leap_day_remembered(target) else [])]
    return func.substr(text, 6, 5).in_(days)


async def _seen(s: Any, a: Armed, now: datetime) -> list[tuple[int, str]]:
    """(contact, occurrence seed) the when holds for now, in contact order."""
    w = a.definition.when
    if isinstance(w, InactivityWhen):
        last = func.max(EVENT.occurred_at)
        rows = (await run(s, select(EVENT.contact_id, func.max(EVENT.id)).where(EVENT.name == w.event)
                          .group_by(EVENT.contact_id).having(last <= now - timedelta(days=w.days))
                          .order_by(EVENT.contact_id))).all()
        return [(r[0], f"inactive:{r[1]}") for r in rows]
    if isinstance(w, DatePropertyWhen):
        today = now.date()
        rows = (await run(s, select(CONTACT.id, CONTACT.properties).where(
            CONTACT.merged_into_id.is_(None), _date_clause(s, w, today)).order_by(CONTACT.id))).all()
        return [(contact_id, f"date:{today.isoformat()}") for contact_id, props in rows
                if date_matches(w, (props or {}).get(w.property), today)]
    if isinstance(w, EmailsNotOpenedWhen):
        rows = (await run(s, select(SEND.contact_id, SEND.id, SEND.read_at).where(
            SEND.channel == "email", SEND.sent_at.is_not(None)).order_by(SEND.contact_id, SEND.id.desc()))).all()
        by_contact: dict[int, list[tuple[int, Any]]] = {}
        for contact_id, send_id, read_at in rows:
            by_contact.setdefault(contact_id, []).append((send_id, read_at))
        return [(cid, f"unopened:{sends[0][0]}") for cid, sends in by_contact.items()
                if len(sends) >= w.count and all(r is None for _, r in sends[:w.count])]
    return []


async def _not_scheduled(s: Any, a: Armed, seen: list[tuple[int, str]], now: datetime) -> list[tuple[int, str]]:
    """Those without a send for this occurrence yet (the unique key would refuse them anyway)."""
    keyed = [(contact_id, seed, occurrence(a.definition, seed, now)) for contact_id, seed in seen]
    taken = set((await run(s, select(SEND.contact_id, SEND.occurrence).where(
        SEND.trigger_id == a.id, SEND.contact_id.in_(sorted({c for c, _, _ in keyed})),
        SEND.occurrence.in_(sorted({o for _, _, o in keyed}))))).all())
    return [(c, seed) for c, seed, o in keyed if (c, o) not in taken]


async def do_sweep_triggers(rt: Runtime, now: datetime | None = None) -> int:
    """Schedule what the time-bound whens fire now; how many sends were added."""
    now = now or utcnow()
    added = 0
    async with rt.db.read() as s:
        index = await trigger_cache(rt).get(s)
    swept = [a for a in index.all.values() if a.enabled and a.definition.when.type in
             ("inactivity", "date_property", "emails_not_opened")]
    for a in swept:
        async with rt.db.read() as s:
            seen = await _seen(s, a, now)
        for start in range(0, len(seen), BATCH):
            async with rt.db.read() as s:
                batch = await _not_scheduled(s, a, seen[start:start + BATCH], now)
                if not batch:
                    continue
                facts = await reads.load_facts(s, sorted({c for c, _ in batch}), needed_events(a.definition), now)
            rows = [send_row(f) for contact_id, seed in batch
                    if (f := decide(Candidate(a, contact_id, seed, now), facts.get(contact_id))) is not None]
            if rows:
                async with rt.db.write() as s:
                    before = await _count(s, a.id)
                    await insert_sends(s, rows)
                    added += await _count(s, a.id) - before
                    s.on_commit(lambda: wake(rt))
    return added


async def _count(s: Any, trigger_id: int) -> int:
    return int((await run(s, select(func.count(SEND.id)).where(SEND.trigger_id == trigger_id))).scalar_one())
