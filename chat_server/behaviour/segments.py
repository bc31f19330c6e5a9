"""Segments: saved filters with nested AND / OR groups, evaluated two ways from one definition.

A segment's definition is a group `{"kind": "group", "match": "all" | "any", "conditions":
[...]}` of the contact filter's conditions (filters.py), a group again (three levels at most),
or the conditions only segments have: when an event first / last happened, the grade, and
membership of another segment. `segment_clause` compiles it to one SQL boolean over `contact`
(counts, lists, exports, the sweep); `evaluate` runs it on one contact's snapshot (the live
check after an event or a property change). A test holds the two to each other.

`reads` says what a definition looks at, so the live check evaluates only the segments an
event name, a property key or a field change can affect (Apache Unomi's index of rules by
the event types they read).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from sqlalchemy import and_, exists, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from ..models import Contact, Event
from ..models.ids import RowId
from ..models.segment import SegmentMembership
from .filter_sql import condition_clause, event_where
from .filters import (
    EventCondition,
    NumberFieldCondition,
    PropertyCondition,
    Storable,
    TextFieldCondition,
    TimeFieldCondition,
    Window,
    _Strict,
)
from .snapshot import Snapshot, matching_events, py_condition

MAX_DEPTH = 3
MAX_CONDITIONS = 100
GRADES = tuple(f"{fit}{engagement}" for fit in "ABCDE" for engagement in "1234")


class EventTimeCondition(_Strict):
    """The first (or last) event E happened more (or less) than T ago. A contact without such
    an event matches neither."""

    kind: Literal["event_time"] = "event_time"
    name: Annotated[str, Field(min_length=1, max_length=200), Storable]
    which: Literal["first", "last"] = "last"
    op: Literal["more_than", "less_than"]
    ago: Window
    url_contains: Annotated[str, Field(min_length=1, max_length=500), Storable] | None = None
    where: Annotated[list[PropertyCondition], Field(max_length=10)] = Field(default_factory=list)


class GradeCondition(_Strict):
    """The grade (A1…E4): equal, not equal, one of."""

    kind: Literal["grade"] = "grade"
    op: Literal["eq", "ne", "in_list", "is_set", "not_set"]
    values: Annotated[list[Literal[GRADES]], Field(max_length=20)] = Field(default_factory=list)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _values_needed(self) -> GradeCondition:
        if self.op in ("eq", "ne") and len(self.values) != 1:
            raise ValueError(f"'{self.op}' compares with one grade")
        if self.op == "in_list" and not self.values:
            raise ValueError("'in_list' needs grades")
        return self


class SegmentCondition(_Strict):
    """The contact is (or is not) in another segment."""

    kind: Literal["segment"] = "segment"
    segment_id: RowId
    op: Literal["in", "not_in"] = "in"


Leaf = (TextFieldCondition | NumberFieldCondition | TimeFieldCondition | PropertyCondition | EventCondition
        | EventTimeCondition | GradeCondition | SegmentCondition)


class Group(_Strict):
    """Every condition holds (`all`) or at least one does (`any`). An empty group: everyone."""

    kind: Literal["group"] = "group"
    match: Literal["all", "any"] = "all"
    conditions: Annotated[
        list[Annotated[
            TextFieldCondition | NumberFieldCondition | TimeFieldCondition | PropertyCondition | EventCondition
            | EventTimeCondition | GradeCondition | SegmentCondition | Group,
            Field(discriminator="kind"),
        ]],
        Field(max_length=30),
    ] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounded(self) -> Group:
        if self.depth() > MAX_DEPTH:
            raise ValueError(f"groups nest at most {MAX_DEPTH} levels deep")
        if sum(1 for _ in self.leaves()) > MAX_CONDITIONS:
            raise ValueError(f"a segment has at most {MAX_CONDITIONS} conditions")
        return self

    def depth(self) -> int:
        return 1 + max((c.depth() for c in self.conditions if isinstance(c, Group)), default=0)

    def leaves(self) -> Iterator[Any]:
        for c in self.conditions:
            if isinstance(c, Group):
                yield from c.leaves()
            else:
                yield c


Group.model_rebuild()


# --- what a definition reads ----------------------------------------------------------------

@dataclass
class Reads:
    """What can change a definition's answer: events by name, property keys, card fields
    (score, grade, sessions, last_seen_at, name…), other segments, and the clock."""

    events: set[str] = field(default_factory=set)
    properties: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    segments: set[int] = field(default_factory=set)
    by_time: bool = False


def reads(definition: Group) -> Reads:
    found = Reads()
    for c in definition.leaves():
        if isinstance(c, TextFieldCondition | NumberFieldCondition):
            found.fields.add(c.field)
        elif isinstance(c, TimeFieldCondition):
            found.fields.add(c.field)
            found.by_time = True
        elif isinstance(c, PropertyCondition):
            found.properties.add(c.key)
            found.by_time |= c.op in ("within_days", "older_than_days")
        elif isinstance(c, EventCondition):
            found.events.add(c.name)
            found.by_time |= c.window() is not None
        elif isinstance(c, EventTimeCondition):
            found.events.add(c.name)
            found.by_time = True
        elif isinstance(c, GradeCondition):
            found.fields.add("grade")
        elif isinstance(c, SegmentCondition):
            found.segments.add(c.segment_id)
    return found


def referenced_segments(definition: Group) -> set[int]:
    return reads(definition).segments


def find_cycle(definitions: dict[int, Group]) -> list[int] | None:
    """A chain of segments that ends where it started, if the definitions make one."""
    state: dict[int, int] = {}  # 1 visiting, 2 done
    path: list[int] = []

    def visit(node: int) -> list[int] | None:
        state[node] = 1
        path.append(node)
        for ref in sorted(referenced_segments(definitions[node])) if node in definitions else []:
            if state.get(ref) == 1:
                return path[path.index(ref):] + [ref]
            if state.get(ref) is None:
                cycle = visit(ref)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(definitions):
        if state.get(node) is None:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def dependency_order(definitions: dict[int, Group]) -> list[int]:
    """Segments after the segments they read (the definitions have no cycle)."""
    order: list[int] = []
    seen: set[int] = set()

    def visit(node: int) -> None:
        if node in seen:
            return
        seen.add(node)
        for ref in sorted(referenced_segments(definitions[node])):
            if ref in definitions:
                visit(ref)
        order.append(node)

    for node in sorted(definitions):
        visit(node)
    return order


# --- SQL ------------------------------------------------------------------------------------

def _event_time_clause(cond: EventTimeCondition, dialect: str, now: datetime) -> ColumnElement[bool]:
    occurred = Event.__table__.c.occurred_at  # type: ignore[attr-defined]
    where = event_where(cond.name, cond.url_contains, cond.where, dialect, now)
    since = now - cond.ago.delta()
    # No aggregates: "last less than T ago" is "some such event after since", and so on.
    if cond.which == "last":
        recent = exists().where(*where, occurred > since)
        return recent if cond.op == "less_than" else and_(exists().where(*where), not_(recent))
    old = exists().where(*where, occurred <= since)
    return old if cond.op == "more_than" else and_(exists().where(*where), not_(old))


def _grade_clause(cond: GradeCondition) -> ColumnElement[bool]:
    grade: ColumnElement[Any] = Contact.__table__.c.grade  # type: ignore[attr-defined]
    if cond.op == "is_set":
        return grade.is_not(None)
    if cond.op == "not_set":
        return grade.is_(None)
    if cond.op == "eq":
        return and_(grade.is_not(None), grade == cond.values[0])
    if cond.op == "ne":
        return or_(grade.is_(None), grade != cond.values[0])
    return and_(grade.is_not(None), grade.in_(cond.values))


def _membership_clause(cond: SegmentCondition) -> ColumnElement[bool]:
    m = SegmentMembership.__table__.c  # type: ignore[attr-defined]
    member = exists().where(m.segment_id == cond.segment_id, m.contact_id == Contact.__table__.c.id)  # type: ignore[attr-defined]
    return member if cond.op == "in" else not_(member)


def _clause(cond: Any, dialect: str, now: datetime) -> ColumnElement[bool]:
    if isinstance(cond, Group):
        return segment_clause(cond, dialect, now)
    if isinstance(cond, EventTimeCondition):
        return _event_time_clause(cond, dialect, now)
    if isinstance(cond, GradeCondition):
        return _grade_clause(cond)
    if isinstance(cond, SegmentCondition):
        return _membership_clause(cond)
    return condition_clause(cond, dialect, now)


def segment_clause(definition: Group, dialect: str, now: datetime) -> ColumnElement[bool]:
    """One SQL boolean over `contact`. Membership of another segment reads that segment's
    stored members, as the live check does."""
    if not definition.conditions:
        return true()
    parts = [_clause(c, dialect, now) for c in definition.conditions]
    return and_(*parts) if definition.match == "all" else or_(*parts)


# --- Python ---------------------------------------------------------------------------------

def _py_event_time(cond: EventTimeCondition, snap: Snapshot, now: datetime) -> bool:
    times = matching_events(snap.events_named(cond.name), cond.name, cond.url_contains, cond.where, now)
    if not times:
        return False
    since = now - cond.ago.delta()
    if cond.which == "last":
        last = max(times)
        return last > since if cond.op == "less_than" else last <= since
    first = min(times)
    return first <= since if cond.op == "more_than" else first > since


def py_grade(cond: GradeCondition, grade: str | None) -> bool:
    if cond.op == "is_set":
        return grade is not None
    if cond.op == "not_set":
        return grade is None
    first: str | None = cond.values[0] if cond.values else None
    if cond.op == "eq":
        return grade == first
    if cond.op == "ne":
        return grade != first
    return grade in cond.values


def evaluate(definition: Group, snap: Snapshot, now: datetime, memo: dict[int, bool] | None = None) -> bool:
    """Does this contact belong? `snap.segments` holds the segments it is in (those read by
    this definition must already be current). An empty group holds for everyone.

    `memo`: the answers of conditions already evaluated on this snapshot at this `now`, by
    the condition object's id (the live check shares one per contact across the segments it
    evaluates, whose equal conditions are one object: `intern_conditions`)."""
    if not definition.conditions:
        return True
    results = (_py_leaf(c, snap, now, memo) for c in definition.conditions)
    return all(results) if definition.match == "all" else any(results)


def _py_leaf(cond: Any, snap: Snapshot, now: datetime, memo: dict[int, bool] | None) -> bool:
    if isinstance(cond, Group):
        return evaluate(cond, snap, now, memo)
    if isinstance(cond, SegmentCondition):
        # Never remembered: the memberships change while the contact is being checked.
        inside = cond.segment_id in snap.segments
        return inside if cond.op == "in" else not inside
    if memo is None:
        return _py_fixed(cond, snap, now)
    found = memo.get(id(cond))
    if found is None:
        found = memo[id(cond)] = _py_fixed(cond, snap, now)
    return found


def _py_fixed(cond: Any, snap: Snapshot, now: datetime) -> bool:
    """A condition on what the snapshot holds fixed: the card, the events, the grade."""
    if isinstance(cond, EventTimeCondition):
        return _py_event_time(cond, snap, now)
    if isinstance(cond, GradeCondition):
        return py_grade(cond, snap.grade)
    return py_condition(cond, snap, now)


def intern_conditions(definitions: Iterable[Group]) -> None:
    """Make equal conditions (other than groups and segment membership) across these
    definitions one object, so a memo by id answers each once per contact."""
    shared: dict[tuple[type, str], Any] = {}

    def walk(group: Group) -> None:
        for n, c in enumerate(group.conditions):
            if isinstance(c, Group):
                walk(c)
            elif not isinstance(c, SegmentCondition):
                group.conditions[n] = shared.setdefault((type(c), repr(c)), c)

    for d in definitions:
        walk(d)


def event_names(definitions: Iterable[Group]) -> set[str]:
    names: set[str] = set()
    for d in definitions:
        names |= reads(d).events
    return names
