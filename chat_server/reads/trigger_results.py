"""A trigger's results: per variant and the control group, what happened to the contacts it
matched, and what the message changed (conversion of the sent against the held-out control).

Definitions (also in docs/triggers-results.md):

- The window is the last `days` whole UTC days, today included, by the day a contact was
  **matched**: every number (the table, the comparison and the series) is about the same cohort,
  so the series adds up to the table.
- **matched**: trigger sends of that variant, whatever became of them (scheduled, sent,
  cancelled at the recheck, failed, or held out for the control). **sent**: those sent.
  delivered / read / clicked / replied / unsubscribed: sent messages with that outcome.
- **goal** and **revenue**: goals reached (and their revenue) by contacts who were sent the
  message, or for the control group by contacts held out: the engine attributes a goal within
  the window after the send (after the match, for the control).
- **conversion**: goal / sent for a variant, goal / held out for the control. A cancelled or
  failed send is in neither group's denominator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from ..db import Database
from ..models import Trigger, TriggerSend
from ..models.types import utcnow
from ..triggers.definition import CONTROL
from ..triggers.stats import Comparison, compare, conversion


@dataclass(frozen=True)
class Arm:
    variant: str
    matched: int = 0
    sent: int = 0
    held_out: int = 0
    delivered: int = 0
    read: int = 0
    clicked: int = 0
    replied: int = 0
    unsubscribed: int = 0
    goal: int = 0
    revenue: float = 0.0

    @property
    def exposed(self) -> int:
        """The conversion's denominator: sent, or for the control group held out."""
        return self.held_out if self.variant == CONTROL else self.sent

    @property
    def conversion(self) -> float | None:
        return conversion(self.goal, self.exposed)


@dataclass(frozen=True)
class Day:
    day: date
    variant: str
    matched: int
    sent: int
    goal: int


@dataclass(frozen=True)
class Results:
    trigger: Trigger
    since: datetime
    variants: list[Arm]
    control: Arm
    comparison: list[tuple[str, Comparison]]
    series: list[Day]


def window_start(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC at the start of the first of the last `days` days (today is the last)."""
    today = (now or utcnow()).astimezone(UTC).date()
    return datetime.combine(today - timedelta(days=days - 1), time(0), tzinfo=UTC)


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _day(column: Any, dialect: str) -> Any:
    """The UTC day of a stored time, as 'YYYY-MM-DD' on both databases (SQLite stores UTC text)."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)


async def trigger_results(db: Database, trigger_id: int, days: int, now: datetime | None = None) -> Results | None:
    """Two aggregate queries over the trigger's sends in the window; None if there is no such
    trigger (a deleted trigger keeps its results)."""
    since = window_start(days, now)
    t = TriggerSend.__table__.c  # type: ignore[attr-defined]
    sent = t.state == "sent"
    reached = and_(or_(sent, t.state == CONTROL), t.goal_at.is_not(None))
    scope = and_(t.trigger_id == trigger_id, t.matched_at >= since)
    day = _day(t.matched_at, db.read_engine.dialect.name)
    async with db.read() as s:
        trigger = await s.get(Trigger, trigger_id)
        if trigger is None:
            return None
        conn = await s.connection()
        totals = (await conn.execute(
            select(t.variant, func.count(), _count(sent), _count(t.state == CONTROL),
                   _count(and_(sent, t.delivered_at.is_not(None))), _count(and_(sent, t.read_at.is_not(None))),
                   _count(and_(sent, t.clicked_at.is_not(None))), _count(and_(sent, t.replied_at.is_not(None))),
                   _count(and_(sent, t.unsubscribed_at.is_not(None))), _count(reached),
                   func.coalesce(func.sum(case((reached, t.revenue), else_=None)), 0.0))
            .where(scope).group_by(t.variant)
        )).all()
        per_day = (await conn.execute(
            select(day, t.variant, func.count(), _count(sent), _count(reached))
            .where(scope).group_by(day, t.variant).order_by(day, t.variant)
        )).all()
    arms = {
        str(v): Arm(str(v), matched=int(m), sent=int(n), held_out=int(h), delivered=int(dl), read=int(rd), clicked=int(cl),
                    replied=int(rp), unsubscribed=int(un), goal=int(g), revenue=float(rev))
        for v, m, n, h, dl, rd, cl, rp, un, g, rev in totals
    }
    # The definition's variants first, in its order and even before anything matched; then any
    # the trigger no longer has (renamed or removed since), whose sends still count.
    named = [str(v.get("name")) for v in trigger.definition.get("variants", []) if isinstance(v, dict)]
    order = [n for n in named if n != CONTROL] + sorted(n for n in arms if n not in named and n != CONTROL)
    variants = [arms.get(name, Arm(name)) for name in order]
    control = arms.get(CONTROL, Arm(CONTROL))
    return Results(
        trigger=trigger, since=since, variants=variants, control=control,
        comparison=[(a.variant, compare(a.goal, a.sent, control.goal, control.held_out)) for a in variants],
        series=[Day(date.fromisoformat(str(d)), str(v), int(m), int(n), int(g)) for d, v, m, n, g in per_day],
    )
