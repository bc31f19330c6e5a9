"""Reports: conversation volume, first response time and resolution time, read from the thread.

Definitions (also in docs/architecture.md):

- A conversation lives forever (one per contact), so times are measured per **cycle**. A cycle
  starts with the contact's first message, or with the contact's first message after the
  previous cycle was resolved. It is **resolved** when an operator (or the snooze timer)
  closes the conversation (a system line with `system_event = "closed"`).
- **First response time** of a cycle: from its first contact message to the first reply an
  operator wrote in it (outbound text by an operator; notes, system lines, automatic and bot
  messages do not count). Attributed to the operator who replied. Cycles nobody answered yet
  are counted as `unanswered`, not as a time.
- **Resolution time** of a cycle: from its first contact message to the close. Attributed to
  the operator who closed it.
- A cycle belongs to the day (UTC) its first contact message was written; a report covers the
  cycles that started between `start` and `end` (whole UTC days, both included).
- **Volume**: per UTC day and channel, the number of conversations in which the contact wrote
  on that channel that day.
- **Median**: the middle value (the mean of the two middle ones for an even count).
  **p90**: nearest rank: the smallest value that at least 90% of the values do not exceed
  (`sorted(values)[ceil(0.9 * n) - 1]`). All times in seconds.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, or_
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import Database
from ..models import AuthorType, Direction, Kind, Message, Operator


@dataclass(frozen=True)
class Line:
    """The part of a message the report reads."""

    conversation_id: int
    seq: int
    direction: str
    kind: str
    author_type: str
    author_id: int | None
    channel: str
    system_event: str | None
    created_at: datetime


@dataclass
class Cycle:
    conversation_id: int
    started_at: datetime
    first_response: float | None = None
    responder_id: int | None = None
    resolution: float | None = None
    resolver_id: int | None = None


@dataclass
class Stats:
    count: int
    median: float | None
    p90: float | None


def stats(values: list[float]) -> Stats:
    if not values:
        return Stats(0, None, None)
    ordered = sorted(values)
    return Stats(len(ordered), statistics.median(ordered), ordered[math.ceil(0.9 * len(ordered)) - 1])


def is_operator_reply(line: Line) -> bool:
    return (line.direction == Direction.outbound and line.author_type == AuthorType.operator
            and line.kind == Kind.text)


def cycles(lines: list[Line]) -> list[Cycle]:
    """Walk each thread in order (lines sorted by conversation, seq) and cut it into cycles."""
    found: list[Cycle] = []
    current: dict[int, Cycle] = {}
    for line in lines:
        cycle = current.get(line.conversation_id)
        if line.direction == Direction.inbound:
            if cycle is None:
                cycle = Cycle(line.conversation_id, line.created_at)
                current[line.conversation_id] = cycle
                found.append(cycle)
        elif cycle is None:
            continue
        elif is_operator_reply(line) and cycle.first_response is None:
            cycle.first_response = (line.created_at - cycle.started_at).total_seconds()
            cycle.responder_id = line.author_id
        elif line.kind == Kind.system and line.system_event == "closed":
            cycle.resolution = (line.created_at - cycle.started_at).total_seconds()
            cycle.resolver_id = line.author_id if line.author_type == AuthorType.operator else None
            del current[line.conversation_id]
    return found


@dataclass
class OperatorTimes:
    first_response: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)


@dataclass
class Report:
    start: date
    end: date
    volume: dict[date, dict[str, int]]
    cycles: int
    unanswered: int
    first_response: Stats
    resolution: Stats
    per_operator: dict[int, tuple[Stats, Stats]]


def build_report(lines: list[Line], start: date, end: date) -> Report:
    begin, stop = day_start(start), day_start(end + timedelta(days=1))
    volume_sets: dict[date, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for line in lines:
        if line.direction == Direction.inbound and begin <= line.created_at < stop:
            volume_sets[line.created_at.astimezone(UTC).date()][line.channel].add(line.conversation_id)
    volume = {
        start + timedelta(days=i): {ch: len(ids) for ch, ids in sorted(volume_sets.get(start + timedelta(days=i), {}).items())}
        for i in range((end - start).days + 1)
    }
    in_range = [c for c in cycles(lines) if begin <= c.started_at < stop]
    per: dict[int, OperatorTimes] = defaultdict(OperatorTimes)
    for c in in_range:
        if c.first_response is not None and c.responder_id is not None:
            per[c.responder_id].first_response.append(c.first_response)
        if c.resolution is not None and c.resolver_id is not None:
            per[c.resolver_id].resolution.append(c.resolution)
    return Report(
        start=start, end=end, volume=volume, cycles=len(in_range),
        unanswered=sum(1 for c in in_range if c.first_response is None),
        first_response=stats([c.first_response for c in in_range if c.first_response is not None]),
        resolution=stats([c.resolution for c in in_range if c.resolution is not None]),
        per_operator={op: (stats(t.first_response), stats(t.resolution)) for op, t in sorted(per.items())},
    )


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


async def load_lines(s: AsyncSession, start: date, end: date) -> list[Line]:
    """The lines of every conversation the contact wrote in during the range: the whole
    thread up to now, because a cycle that started in range may be answered or closed later,
    and whether a message starts a cycle depends on what came before it."""
    begin, stop = day_start(start), day_start(end + timedelta(days=1))
    active = (
        select(Message.conversation_id).where(
            Message.direction == Direction.inbound, col(Message.created_at) >= begin, col(Message.created_at) < stop)
        .distinct()
    )
    relevant = or_(
        col(Message.direction) == Direction.inbound,
        and_(col(Message.direction) == Direction.outbound, col(Message.author_type) == AuthorType.operator,
             col(Message.kind) == Kind.text),
        and_(col(Message.kind) == Kind.system, col(Message.system_event) == "closed"),
    )
    m = Message.__table__.c  # type: ignore[attr-defined]
    conn = await s.connection()
    rows = (
        await conn.execute(
            sa_select(m.conversation_id, m.seq, m.direction, m.kind, m.author_type, m.author_id, m.channel,
                      m.system_event, m.created_at)
            .where(m.conversation_id.in_(active), relevant)
            .order_by(m.conversation_id, m.seq)
        )
    ).all()
    return [Line(*row) for row in rows]


async def operator_names(s: AsyncSession) -> dict[int, str]:
    rows = (await s.exec(select(Operator.id, Operator.name))).all()
    return {ident: name for ident, name in rows if ident is not None}


async def report(db: Database, start: date, end: date) -> tuple[Report, dict[int, str]]:
    """The report for these days, and the names of the operators it may mention."""
    async with db.read() as s:
        return build_report(await load_lines(s, start, end), start, end), await operator_names(s)
