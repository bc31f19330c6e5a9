"""Live segment membership: after an event or a card change, the touched contacts are checked
against the segments that read what changed, inside the same transaction, and entering and
leaving are written to the contact's timeline (`segment_entered` / `segment_left`).

Segments are indexed by what they read and a change narrows them to the conditions it can
flip (`behaviour/segment_index.py`), so an event costs the few segments it can affect,
evaluated on that one contact (never the table), with one snapshot query of each kind for
the whole batch. A segment that reads another is checked after it, when it changed. Conditions that come true with time alone
("no session in 14 days") are left to the sweep (`do_sweep_segments`), which asks the SQL
form which contacts differ from the stored members and settles those the same way.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..behaviour.segment_index import SegmentIndex as SegmentIndex
from ..behaviour.segment_index import Touch as Touch
from ..behaviour.segments import Group, evaluate, segment_clause
from ..behaviour.snapshot import Snapshot
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
class MembershipChange:
    contact_id: int
    segment_id: int
    entered: bool


# What changes when a segment is added, edited or removed.
STAMP = (select(func.count(SEGMENT.id)).scalar_subquery(), select(func.max(SEGMENT.updated_at)).scalar_subquery(),
         select(func.max(SEGMENT.id)).scalar_subquery())


class SegmentCache:
    """The index, rebuilt only when a segment was added, changed or removed (here or by
    another process): one cheap query per transaction tells."""

    def __init__(self) -> None:
        self.stamp: tuple[Any, ...] | None = None
        self.index = SegmentIndex([])

    async def get(self, s: AsyncSession, stamp: tuple[Any, ...] | None = None) -> SegmentIndex:
        """`stamp`: the values of STAMP, when the caller read them with others."""
        if stamp is None:
            stamp = tuple((await run(s, select(*STAMP))).one())
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
    s: AsyncSession, contact_ids: list[int], event_names: set[str], with_event_properties: bool | set[str] = True,
    with_segments: bool = True,
) -> dict[int, Snapshot]:
    """The contacts as the definitions see them: card, the events of these names (with their
    own properties: all, or those of the names given), and the segments they are in."""
    pg = dialect_of(s) == "postgresql"
    columns = [
        CONTACT.id, CONTACT.name, CONTACT.email, CONTACT.phone, CONTACT.first_referrer, CONTACT.first_landing_page,
        CONTACT.score, CONTACT.sessions, CONTACT.grade, CONTACT.first_seen_at, CONTACT.last_seen_at,
        CONTACT.properties,
    ]
    if with_segments:
        # The memberships in the same query, one value per contact (all of them: a filter on
        # the segments would have SQLite probe the (segment, contact) key once per segment).
        columns.append(select(func.array_agg(MEMBER.segment_id) if pg else func.group_concat(MEMBER.segment_id))
                       .where(MEMBER.contact_id == CONTACT.id).scalar_subquery())
    rows = (await run(s, select(*columns).where(CONTACT.id.in_(contact_ids), CONTACT.merged_into_id.is_(None)))).all()
    snaps = {
        r[0]: Snapshot(
            name=r[1], email=r[2], phone=r[3], first_referrer=r[4], first_landing_page=r[5], score=r[6] or 0,
            sessions=r[7] or 0, grade=r[8], first_seen_at=r[9], last_seen_at=r[10], properties=r[11] or {},
            events=[], segments=_segment_ids(r[12], pg) if len(r) > 12 else set(),
        )
        for r in rows
    }
    if not snaps:
        return snaps
    if event_names:
        columns = [EVENT.contact_id, EVENT.name, EVENT.url, EVENT.occurred_at]
        if with_event_properties:
            # Only the events whose own properties some condition reads bring them.
            columns.append(EVENT.properties if with_event_properties is True else case(
                (EVENT.name.in_(sorted(with_event_properties)), EVENT.properties), else_=None))
        for r in (await run(s, select(*columns).where(
                EVENT.contact_id.in_(list(snaps)), EVENT.name.in_(sorted(event_names))))).all():
            snaps[r[0]].events.append((r[1], r[2], r[3], r[4] or {}) if with_event_properties else (r[1], r[2], r[3]))
    return snaps


def _segment_ids(inside: Any, pg: bool) -> set[int]:
    if not inside:
        return set()
    return set(inside) if pg else set(map(int, inside.split(",")))


async def evaluate_contacts(
    s: AsyncSession, rt: Runtime, touched: Mapping[int, set[int] | Touch], now: datetime | None = None,
    index: SegmentIndex | None = None,
) -> list[MembershipChange]:
    """Re-check each touched contact against the segments its change can affect (a Touch) or
    against the given segments (a set of ids), and store who entered and who left. Runs
    inside the caller's transaction, after its writes were flushed."""
    now = now or utcnow()
    if index is None:
        index = await segment_cache(rt).get(s)
    if not index.definitions or not touched:
        return []
    plan: dict[int, set[int]] = {}
    for contact_id, what in touched.items():
        segments = (index.affected(what, now) if isinstance(what, Touch) else set(what)) & index.definitions.keys()
        if segments:
            plan[contact_id] = segments
    if not plan:
        return []
    needed = index.with_dependents({seg_id for ids in plan.values() for seg_id in ids})
    names = {name for seg_id in needed for name in index.reads[seg_id].events}
    with_properties = {c.name for seg_id in needed & index.event_properties
                       for c in index.definitions[seg_id].leaves() if getattr(c, "where", None)}
    snaps = await snapshots(s, sorted(plan), names, with_event_properties=with_properties)
    gone = sorted(set(plan) - snaps.keys())
    if gone:
        # Merged into another card: its memberships go with it (the survivor is checked on
        # its own next change, or by the sweep).
        await run(s, delete(SegmentMembership.__table__).where(MEMBER.contact_id.in_(gone)))  # type: ignore[attr-defined]
    changes: list[MembershipChange] = []
    position = index.position
    for contact_id, direct in plan.items():
        snap = snaps.get(contact_id)
        if snap is None:
            continue  # merged away or gone
        todo = [(position[seg_id], seg_id) for seg_id in direct]
        heapq.heapify(todo)
        queued = set(direct)
        memo: dict[int, bool] = {}  # shared conditions answered once for this contact
        while todo:
            seg_id = heapq.heappop(todo)[1]
            inside = evaluate(index.definitions[seg_id], snap, now, memo)
            if inside != (seg_id in snap.segments):
                # The segments reading this one follow (in order) and see the new answer.
                (snap.segments.add if inside else snap.segments.discard)(seg_id)
                changes.append(MembershipChange(contact_id, seg_id, inside))
                for dep in index.dependents.get(seg_id, ()):
                    if dep not in queued:
                        queued.add(dep)
                        heapq.heappush(todo, (position[dep], dep))
    await _store(s, index, changes, now)
    return changes


async def _store(s: AsyncSession, index: SegmentIndex, changes: list[MembershipChange], now: datetime,
                 reason: str | None = None) -> None:
    """The membership rows, and the timeline entries (`reason` says why, when it was not the
    contact's own doing: "definition" when the segment was created or edited)."""
    if not changes:
        return
    entered = [{"segment_id": c.segment_id, "contact_id": c.contact_id, "entered_at": now} for c in changes if c.entered]
    left = [c for c in changes if not c.entered]
    if entered:
        await run(s, insert(SegmentMembership.__table__), entered)  # type: ignore[attr-defined]
    if left:
        await run(s, _DELETE_MEMBER, [{"b_segment": c.segment_id, "b_contact": c.contact_id} for c in left])
    extra = {"reason": reason} if reason else {}
    for c in changes:  # the webhooks' segment.entered / segment.left
        emit_membership(s, c.contact_id, c.segment_id, index.names.get(c.segment_id, ""), c.entered)
    await run(s, insert(Event.__table__), [  # type: ignore[attr-defined]
        {"contact_id": c.contact_id, "name": TIMELINE_EVENTS[0] if c.entered else TIMELINE_EVENTS[1],
         "properties": {"segment_id": c.segment_id, "segment": index.names.get(c.segment_id, ""), **extra},
         "url": None, "occurred_at": now, "external_id": None}
        for c in changes
    ])


_DELETE_MEMBER = delete(SegmentMembership.__table__).where(  # type: ignore[attr-defined]
    MEMBER.segment_id == bindparam("b_segment"), MEMBER.contact_id == bindparam("b_contact"))


async def sql_members(s: AsyncSession, definition: Group, dialect: str, now: datetime) -> set[int]:
    rows = (await run(s, select(CONTACT.id).where(
        CONTACT.merged_into_id.is_(None), segment_clause(definition, dialect, now)))).all()
    return {r[0] for r in rows}


async def stored_members(s: AsyncSession, segment_id: int) -> set[int]:
    return {r[0] for r in (await run(s, select(MEMBER.contact_id).where(MEMBER.segment_id == segment_id))).all()}


async def resync(s: AsyncSession, index: SegmentIndex, segment_ids: Iterable[int], now: datetime) -> None:
    """A new or edited definition takes its members from its SQL form; who enters and who
    leaves is on their timelines like any other change (with `reason` "definition", so a
    trigger may tell an admin's edit from the contact's doing). The segments reading it
    follow, in order."""
    dialect = dialect_of(s)
    for seg_id in sorted(index.with_dependents(set(segment_ids)), key=index.position.__getitem__):
        members = await sql_members(s, index.definitions[seg_id], dialect, now)
        stored = await stored_members(s, seg_id)
        changes = [MembershipChange(c, seg_id, False) for c in sorted(stored - members)]
        changes += [MembershipChange(c, seg_id, True) for c in sorted(members - stored)]
        for start in range(0, len(changes), 5000):
            await _store(s, index, changes[start:start + 5000], now, reason="definition")


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


async def do_sweep_segments(rt: Runtime, now: datetime | None = None) -> list[MembershipChange]:
    """Catch what time alone changed: for each segment whose conditions read the clock, the
    contacts the SQL form places differently from the stored members are checked one by one
    (the live check) and recorded as entering or leaving. Segments reading a changed one follow.
    Triggers on entering or leaving are scheduled in the same transaction, as for a change an
    event made ("no session in 14 days" is the source's re-engagement message)."""
    from .trigger_sends import react  # trigger_sends builds on this module

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
                await react(s, rt, {}, [], found, now)
            changes.extend(found)
            changed |= {c.segment_id for c in found}
    return changes


async def _lock(s: AsyncSession, contact_ids: list[int]) -> None:
    """Contacts in id order, as every writer of membership takes them (PostgreSQL)."""
    if dialect_of(s) == "postgresql":
        for chunk in _chunks(contact_ids):
            await run(s, select(CONTACT.id).where(CONTACT.id.in_(chunk)).order_by(CONTACT.id).with_for_update())
