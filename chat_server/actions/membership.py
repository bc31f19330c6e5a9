"""Live segment membership: after an event or a card change, the touched contacts are checked
against the segments that read what changed, inside the same transaction, and entering and
leaving are written to the contact's timeline (`segment_entered` / `segment_left`).

Segments are indexed by the event names, property keys and card fields they read, so an
event costs the few segments it can affect, evaluated on that one contact (never the table).
A segment that reads another is checked after it. Conditions that come true with time alone
("no session in 14 days") are left to the sweep (`do_sweep_segments`), which asks the SQL
form which contacts differ from the stored members and settles those the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..behaviour.filters import Snapshot
from ..behaviour.segments import Group, Reads, dependency_order, evaluate, reads, segment_clause
from ..models import Contact, Event, Segment, SegmentMembership
from ..models.types import utcnow
from ..runtime import Runtime
from .webhook_events import emit_membership

CONTACT = Contact.__table__.c  # type: ignore[attr-defined]
EVENT = Event.__table__.c  # type: ignore[attr-defined]
MEMBER = SegmentMembership.__table__.c  # type: ignore[attr-defined]
SEGMENT = Segment.__table__.c  # type: ignore[attr-defined]
# What every tracked event changes on the card, besides its own name.
EVENT_FIELDS = frozenset({"last_seen_at"})
TIMELINE_EVENTS = ("segment_entered", "segment_left")


@dataclass
class Touch:
    """What changed on one contact: events recorded (by name), property keys, card fields."""

    events: set[str] = field(default_factory=set)
    properties: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)

    def add(self, other: Touch) -> None:
        self.events |= other.events
        self.properties |= other.properties
        self.fields |= other.fields


@dataclass
class MembershipChange:
    contact_id: int
    segment_id: int
    entered: bool


class SegmentIndex:
    """The segments, parsed once, indexed by what they read."""

    def __init__(self, rows: Iterable[tuple[int, str, dict[str, Any]]]) -> None:
        self.definitions: dict[int, Group] = {}
        self.names: dict[int, str] = {}
        for seg_id, name, definition in rows:
            self.definitions[seg_id] = Group.model_validate(definition)
            self.names[seg_id] = name
        self.reads: dict[int, Reads] = {i: reads(d) for i, d in self.definitions.items()}
        self.order = dependency_order(self.definitions)
        self.position = {seg_id: n for n, seg_id in enumerate(self.order)}
        self.by_event: dict[str, set[int]] = {}
        self.by_property: dict[str, set[int]] = {}
        self.by_field: dict[str, set[int]] = {}
        self.dependents: dict[int, set[int]] = {}
        for seg_id, r in self.reads.items():
            for name in r.events:
                self.by_event.setdefault(name, set()).add(seg_id)
            for key in r.properties:
                self.by_property.setdefault(key, set()).add(seg_id)
            for name in r.fields:
                self.by_field.setdefault(name, set()).add(seg_id)
            for ref in r.segments:
                self.dependents.setdefault(ref, set()).add(seg_id)
        self.by_time = {seg_id for seg_id, r in self.reads.items() if r.by_time}
        # Segments with conditions on an event's own properties: only they need them read.
        self.event_properties = {seg_id for seg_id, d in self.definitions.items()
                                 if any(getattr(c, "where", None) for c in d.leaves())}

    def affected(self, touch: Touch) -> set[int]:
        found: set[int] = set()
        for name in touch.events:
            found |= self.by_event.get(name, set())
        for key in touch.properties:
            found |= self.by_property.get(key, set())
        for name in touch.fields:
            found |= self.by_field.get(name, set())
        return self.with_dependents(found)

    def with_dependents(self, segments: set[int]) -> set[int]:
        closed, todo = set(segments), list(segments)
        while todo:
            for dep in self.dependents.get(todo.pop(), ()):
                if dep not in closed:
                    closed.add(dep)
                    todo.append(dep)
        return closed


class SegmentCache:
    """The index, rebuilt only when a segment was added, changed or removed (here or by
    another process): one cheap query per transaction tells."""

    def __init__(self) -> None:
        self.stamp: tuple[Any, ...] | None = None
        self.index = SegmentIndex([])

    async def get(self, s: AsyncSession) -> SegmentIndex:
        stamp = tuple((await run(s, select(func.count(SEGMENT.id), func.max(SEGMENT.updated_at),
                                                func.max(SEGMENT.id)))).one())
        if stamp != self.stamp:
            rows = (await run(s, select(SEGMENT.id, SEGMENT.name, SEGMENT.definition))).all()
            self.index = SegmentIndex((r[0], r[1], r[2]) for r in rows)
            self.stamp = stamp
        return self.index


async def run(s: AsyncSession, statement: Any, params: Any = None) -> Any:
    """A Core statement on the session's connection, in its transaction (the ORM's unit of
    work costs more CPU per row than the database does)."""
    db = await s.connection()
    return await db.execute(statement, params)


def dialect_of(s: AsyncSession) -> str:
    bind = s.bind
    assert bind is not None
    return bind.dialect.name


def segment_cache(rt: Runtime) -> SegmentCache:
    if rt.segments is None:
        rt.segments = SegmentCache()
    return rt.segments


async def snapshots(
    s: AsyncSession, contact_ids: list[int], event_names: set[str], with_event_properties: bool = True,
) -> dict[int, Snapshot]:
    """The contacts as the definitions see them: card, the events of these names, segments."""
    rows = (await run(s, select(
        CONTACT.id, CONTACT.name, CONTACT.email, CONTACT.phone, CONTACT.first_referrer, CONTACT.first_landing_page,
        CONTACT.score, CONTACT.sessions, CONTACT.grade, CONTACT.first_seen_at, CONTACT.last_seen_at,
        CONTACT.properties,
    ).where(CONTACT.id.in_(contact_ids), CONTACT.merged_into_id.is_(None)))).all()
    snaps = {
        r[0]: Snapshot.model_construct(
            name=r[1], email=r[2], phone=r[3], first_referrer=r[4], first_landing_page=r[5], score=r[6] or 0,
            sessions=r[7] or 0, grade=r[8], first_seen_at=r[9], last_seen_at=r[10], properties=r[11] or {},
            events=[], segments=set(),
        )
        for r in rows
    }
    if not snaps:
        return snaps
    if event_names:
        columns = [EVENT.contact_id, EVENT.name, EVENT.url, EVENT.occurred_at]
        if with_event_properties:
            columns.append(EVENT.properties)
        for r in (await run(s, select(*columns).where(
                EVENT.contact_id.in_(list(snaps)), EVENT.name.in_(sorted(event_names))))).all():
            snaps[r[0]].events.append((r[1], r[2], r[3], r[4] or {}) if with_event_properties else (r[1], r[2], r[3]))
    for contact_id, segment_id in (await run(s, select(MEMBER.contact_id, MEMBER.segment_id).where(
            MEMBER.contact_id.in_(list(snaps))))).all():
        snaps[contact_id].segments.add(segment_id)
    return snaps


async def evaluate_contacts(
    s: AsyncSession, rt: Runtime, touched: dict[int, set[int] | Touch], now: datetime | None = None,
) -> list[MembershipChange]:
    """Re-check each touched contact against the segments its change can affect (a Touch) or
    against the given segments (a set of ids), and store who entered and who left. Runs
    inside the caller's transaction, after its writes were flushed."""
    now = now or utcnow()
    index = await segment_cache(rt).get(s)
    if not index.definitions or not touched:
        return []
    plan: dict[int, list[int]] = {}
    for contact_id, what in touched.items():
        segments = index.affected(what) if isinstance(what, Touch) else index.with_dependents(what)
        segments &= index.definitions.keys()
        if segments:
            plan[contact_id] = sorted(segments, key=index.position.__getitem__)
    if not plan:
        return []
    needed = {seg_id for ids in plan.values() for seg_id in ids}
    names = {name for seg_id in needed for name in index.reads[seg_id].events}
    snaps = await snapshots(s, sorted(plan), names, with_event_properties=bool(needed & index.event_properties))
    gone = sorted(set(plan) - snaps.keys())
    if gone:
        # Merged into another card: its memberships go with it (the survivor is checked on
        # its own next change, or by the sweep).
        await run(s, delete(SegmentMembership.__table__).where(MEMBER.contact_id.in_(gone)))  # type: ignore[attr-defined]
    changes: list[MembershipChange] = []
    for contact_id, ordered in plan.items():
        snap = snaps.get(contact_id)
        if snap is None:
            continue  # merged away or gone
        for seg_id in ordered:
            inside = evaluate(index.definitions[seg_id], snap, now)
            if inside != (seg_id in snap.segments):
                # Later segments of this contact that read this one see the new answer.
                (snap.segments.add if inside else snap.segments.discard)(seg_id)
                changes.append(MembershipChange(contact_id, seg_id, inside))
    await _store(s, index, changes, now)
    return changes


async def _store(s: AsyncSession, index: SegmentIndex, changes: list[MembershipChange], now: datetime) -> None:
    if not changes:
        return
    entered = [{"segment_id": c.segment_id, "contact_id": c.contact_id, "entered_at": now} for c in changes if c.entered]
    left = [c for c in changes if not c.entered]
    if entered:
        await run(s, insert(SegmentMembership.__table__), entered)  # type: ignore[attr-defined]
    if left:
        await run(s, delete(SegmentMembership.__table__).where(or_(*(  # type: ignore[attr-defined]
            and_(MEMBER.segment_id == c.segment_id, MEMBER.contact_id == c.contact_id) for c in left))))
    for c in changes:  # the webhooks' segment.entered / segment.left
        emit_membership(s, c.contact_id, c.segment_id, index.names.get(c.segment_id, ""), c.entered)
    await run(s, insert(Event.__table__), [  # type: ignore[attr-defined]
        {"contact_id": c.contact_id, "name": TIMELINE_EVENTS[0] if c.entered else TIMELINE_EVENTS[1],
         "properties": {"segment_id": c.segment_id, "segment": index.names.get(c.segment_id, "")},
         "url": None, "occurred_at": now, "external_id": None}
        for c in changes
    ])


async def sql_members(s: AsyncSession, definition: Group, dialect: str, now: datetime) -> set[int]:
    rows = (await run(s, select(CONTACT.id).where(
        CONTACT.merged_into_id.is_(None), segment_clause(definition, dialect, now)))).all()
    return {r[0] for r in rows}


async def stored_members(s: AsyncSession, segment_id: int) -> set[int]:
    return {r[0] for r in (await run(s, select(MEMBER.contact_id).where(MEMBER.segment_id == segment_id))).all()}


async def resync_silently(s: AsyncSession, index: SegmentIndex, segment_ids: Iterable[int], now: datetime) -> None:
    """A new or edited definition takes its members as they are, without timeline entries
    (nobody did anything); the segments reading it follow, in order."""
    dialect = dialect_of(s)
    for seg_id in sorted(index.with_dependents(set(segment_ids)), key=index.position.__getitem__):
        members = await sql_members(s, index.definitions[seg_id], dialect, now)
        stored = await stored_members(s, seg_id)
        if stored - members:
            for chunk in _chunks(sorted(stored - members)):
                await run(s, delete(SegmentMembership.__table__).where(  # type: ignore[attr-defined]
                    MEMBER.segment_id == seg_id, MEMBER.contact_id.in_(chunk)))
        if members - stored:
            await run(s, insert(SegmentMembership.__table__), [  # type: ignore[attr-defined]
                {"segment_id": seg_id, "contact_id": c, "entered_at": now} for c in sorted(members - stored)])


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


async def do_sweep_segments(rt: Runtime, now: datetime | None = None) -> list[MembershipChange]:
    """Catch what time alone changed: for each segment whose conditions read the clock, the
    contacts the SQL form places differently from the stored members are checked one by one
    (the live check) and recorded as entering or leaving. Segments reading a changed one follow."""
    now = now or utcnow()
    changes: list[MembershipChange] = []
    async with rt.db.read() as s:
        index = await segment_cache(rt).get(s)
    changed: set[int] = set()
    for seg_id in index.order:
        if seg_id not in index.by_time and not (index.reads[seg_id].segments & changed):
            continue
        # The scan runs outside the write transaction (SQLite's one writer keeps ingesting);
        # the contacts it finds are checked again one by one under their locks.
        async with rt.db.read() as s:
            differ = (await sql_members(s, index.definitions[seg_id], dialect_of(s), now)) ^ (await stored_members(s, seg_id))
        if differ:
            async with rt.db.write() as s:
                await _lock(s, sorted(differ))
                found = await evaluate_contacts(s, rt, {c: {seg_id} for c in differ}, now)
            changes.extend(found)
            changed |= {c.segment_id for c in found}
    return changes


async def _lock(s: AsyncSession, contact_ids: list[int]) -> None:
    """Contacts in id order, as every writer of membership takes them (PostgreSQL)."""
    if dialect_of(s) == "postgresql":
        for chunk in _chunks(contact_ids):
            await run(s, select(CONTACT.id).where(CONTACT.id.in_(chunk)).order_by(CONTACT.id).with_for_update())
