"""Saved segments: admins create, change and remove them; the presets they start from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ..behaviour.segments import Group, find_cycle, referenced_segments
from ..models import Operator, Role, Segment, SegmentMembership
from ..models.types import utcnow
from ..runtime import Runtime
from .errors import ActionError, Conflict, Forbidden, NotFound
from .membership import SegmentIndex, resync, run
from .validation import check_storable

MAX_SEGMENTS = 1000

# The lifecycle of a product's users, and the source's example; each is added as an
# ordinary segment the admin may edit.
PRESETS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "warm_leads": ("Warm leads without an order", "Email known, a session in the last 30 days, never ordered, score over 20", {
        "match": "all", "conditions": [
            {"kind": "field", "field": "email", "op": "is_set"},
            {"kind": "event_time", "name": "session_started", "which": "last", "op": "less_than",
             "ago": {"amount": 30, "unit": "days"}},
            {"kind": "event", "name": "order_placed", "op": "never"},
            {"kind": "number", "field": "score", "op": "gt", "value": 20},
        ]}),
    "newly_registered": ("Newly registered", "Signed up in the last 7 days", {
        "match": "all", "conditions": [
            {"kind": "event", "name": "signed_up", "op": "at_least", "count": 1, "within": {"amount": 7, "unit": "days"}},
        ]}),
    "newbies": ("Newbies", "Signed up in the last 30 days, at most 3 sessions so far", {
        "match": "all", "conditions": [
            {"kind": "event", "name": "signed_up", "op": "at_least", "count": 1, "within": {"amount": 30, "unit": "days"}},
            {"kind": "event", "name": "session_started", "op": "at_most", "count": 3},
        ]}),
    "engaged": ("Engaged", "5 or more sessions in the last 30 days", {
        "match": "all", "conditions": [
            {"kind": "event", "name": "session_started", "op": "at_least", "count": 5,
             "within": {"amount": 30, "unit": "days"}},
        ]}),
    "power_users": ("Power users", "20 or more sessions in the last 30 days", {
        "match": "all", "conditions": [
            {"kind": "event", "name": "session_started", "op": "at_least", "count": 20,
             "within": {"amount": 30, "unit": "days"}},
        ]}),
    "dormant": ("Used the product, no action in 14 days", "Had sessions, the last one more than 14 days ago", {
        "match": "all", "conditions": [
            {"kind": "event_time", "name": "session_started", "which": "last", "op": "more_than",
             "ago": {"amount": 14, "unit": "days"}},
        ]}),
}


def check_can_manage(actor: Operator) -> None:
    if actor.role != Role.admin:
        raise Forbidden("admin_only", "only admins manage segments")


def check_segment_name(name: str) -> str:
    name = check_storable(name.strip(), "name")
    if not 1 <= len(name) <= 200:
        raise ActionError("invalid_name", "a segment's name is 1 to 200 characters")
    return name


async def _definitions(rt: Runtime) -> dict[int, Group]:
    async with rt.db.read() as s:
        rows = (await run(s, select(Segment.id, Segment.definition))).all()  # type: ignore[call-overload]
    return {r[0]: Group.model_validate(r[1]) for r in rows}


def check_references(segment_id: int | None, definition: Group, existing: dict[int, Group]) -> None:
    """Every segment it reads exists, and no chain of segments leads back to itself."""
    for ref in sorted(r for r in _refs(definition)):
        if ref not in existing or ref == segment_id:
            if ref == segment_id:
                raise ActionError("segment_cycle", "a segment cannot read itself")
            raise ActionError("unknown_segment", f"there is no segment #{ref}")
    key = segment_id if segment_id is not None else -1
    cycle = find_cycle({**existing, key: definition})
    if cycle:
        shown = " → ".join("this segment" if i == key else f"#{i}" for i in cycle)
        raise ActionError("segment_cycle", f"segments would read each other in a circle: {shown}")


def _refs(definition: Group) -> set[int]:
    return referenced_segments(definition)


async def _index(rt: Runtime, s: Any) -> SegmentIndex:
    rows = (await run(s, select(Segment.id, Segment.name, Segment.definition))).all()  # type: ignore[call-overload]
    return SegmentIndex((r[0], r[1], r[2]) for r in rows)


async def do_create_segment(
    rt: Runtime, actor: Operator, name: str, definition: Group, description: str = "", preset: str | None = None,
    now: datetime | None = None,
) -> Segment:
    check_can_manage(actor)
    name = check_segment_name(name)
    description = check_storable(description.strip(), "description")[:1000]
    existing = await _definitions(rt)
    if len(existing) >= MAX_SEGMENTS:
        raise ActionError("too_many_segments", f"at most {MAX_SEGMENTS} segments")
    check_references(None, definition, existing)
    segment = Segment(name=name, description=description, definition=definition.model_dump(mode="json"),
                      preset=preset, created_by_id=actor.id)
    try:
        async with rt.db.write() as s:
            s.add(segment)
            await s.flush()
            assert segment.id is not None
            await resync(s, await _index(rt, s), [segment.id], now or utcnow())
    except IntegrityError as exc:
        raise Conflict("name_taken", f"there is already a segment called {name!r}") from exc
    return segment


async def do_create_preset_segment(rt: Runtime, actor: Operator, key: str) -> Segment:
    if key not in PRESETS:
        raise NotFound("unknown_preset", f"no preset called {key!r}; there are: {', '.join(PRESETS)}")
    name, description, definition = PRESETS[key]
    return await do_create_segment(rt, actor, name, Group.model_validate(definition), description, preset=key)


async def do_update_segment(
    rt: Runtime, actor: Operator, segment_id: int, *, name: str | None = None, description: str | None = None,
    definition: Group | None = None, now: datetime | None = None,
) -> Segment:
    check_can_manage(actor)
    new_name = check_segment_name(name) if name is not None else None
    if definition is not None:
        existing = await _definitions(rt)
        if segment_id not in existing:
            raise NotFound("segment_not_found", "no such segment")
        check_references(segment_id, definition, {k: v for k, v in existing.items() if k != segment_id})
    try:
        async with rt.db.write() as s:
            segment = await s.get(Segment, segment_id)
            if segment is None:
                raise NotFound("segment_not_found", "no such segment")
            if new_name is not None:
                segment.name = new_name
            if description is not None:
                segment.description = check_storable(description.strip(), "description")[:1000]
            if definition is not None:
                segment.definition = definition.model_dump(mode="json")
            segment.updated_at = utcnow()
            s.add(segment)
            await s.flush()
            if definition is not None:
                await resync(s, await _index(rt, s), [segment_id], now or utcnow())
    except IntegrityError as exc:
        raise Conflict("name_taken", f"there is already a segment called {new_name!r}") from exc
    return segment


async def do_delete_segment(rt: Runtime, actor: Operator, segment_id: int) -> None:
    check_can_manage(actor)
    existing = await _definitions(rt)
    if segment_id not in existing:
        raise NotFound("segment_not_found", "no such segment")
    readers = sorted(i for i, d in existing.items() if segment_id in _refs(d))
    if readers:
        raise Conflict("segment_in_use", "segments " + ", ".join(f"#{i}" for i in readers) + " read this one")
    async with rt.db.write() as s:
        await run(s, delete(SegmentMembership).where(SegmentMembership.segment_id == segment_id))  # type: ignore[arg-type]
        segment = await s.get(Segment, segment_id)
        if segment is not None:
            await s.delete(segment)
