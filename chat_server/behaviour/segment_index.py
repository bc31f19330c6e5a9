"""Which segments a change can move a contact into or out of.

Segments are indexed by the event names, property keys and card fields they read (Apache
Unomi's index of rules by the event types they read). A change narrows that further when it
says what happened: an event can flip only the conditions on events it matches (its name, its
page, its own properties); a property or a field (score, grade, last seen) can flip only the
conditions whose answer differs between its value before and after. Every other condition
answers as it did, so the segment answers as its stored membership says, and is not evaluated.
Conditions that come true with time alone are the sweep's (`actions.membership.do_sweep_segments`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from .filters import EventCondition, NumberFieldCondition, PropertyCondition, TimeFieldCondition
from .segments import (
    EventTimeCondition,
    GradeCondition,
    Group,
    Reads,
    dependency_order,
    intern_conditions,
    py_grade,
    reads,
)
from .snapshot import EventFact, matching_events, py_property

# A property that is not on the card (before it was set, after it was unset).
MISSING: Any = object()
Predicate = Callable[[Any, datetime], bool]


@dataclass
class Touch:
    """What changed on one contact: events recorded (by name), property keys, card fields.
    When known: the events themselves (`happened`: all of them, or None), and for properties
    and fields their values before and after (MISSING when not set)."""

    events: set[str] = field(default_factory=set)
    properties: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    values: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    property_values: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    happened: list[EventFact] | None = None

    def add(self, other: Touch) -> None:
        detailed = (self.happened is not None or not self.events) and (other.happened is not None or not other.events)
        self.happened = (self.happened or []) + (other.happened or []) if detailed else None
        self.events |= other.events
        self.properties |= other.properties
        self.fields |= other.fields
        for mine, theirs in ((self.values, other.values), (self.property_values, other.property_values)):
            for name, (before, after) in theirs.items():
                mine[name] = (mine.get(name, (before, after))[0], after)


class SegmentIndex:
    """The segments, parsed once, indexed by what they read."""

    def __init__(self, rows: Iterable[tuple[int, str, dict[str, Any]]]) -> None:
        self.definitions: dict[int, Group] = {}
        self.names: dict[int, str] = {}
        for seg_id, name, definition in rows:
            self.definitions[seg_id] = Group.model_validate(definition)
            self.names[seg_id] = name
        intern_conditions(self.definitions.values())
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
        # Per event name, property key and field: its distinct conditions (as predicates of
        # the value, for properties and fields), each with the segments holding it.
        self.event_conditions: dict[str, list[tuple[Any, set[int]]]] = {}
        self.property_predicates: dict[str, list[tuple[Predicate, set[int]]]] = {}
        self.value_predicates: dict[str, list[tuple[Predicate, set[int]]]] = {}
        distinct: dict[str, tuple[Any, set[int]]] = {}
        for seg_id, d in self.definitions.items():
            for c in d.leaves():
                if isinstance(c, EventCondition | EventTimeCondition):
                    # Only what decides whether an event counts: its name, page and properties.
                    key, name, made = f"e{c.name}|{c.url_contains}|{c.where}", c.name, cast(Any, c)
                elif isinstance(c, PropertyCondition):
                    key, name, made = f"p{c!r}", c.key, _property_predicate(c)
                elif (read := _value_field(c)) is not None:
                    key, name, made = f"v{c!r}", read, _value_predicate(c)
                else:
                    continue
                if key not in distinct:
                    distinct[key] = (made, set())
                    index = self.event_conditions if key[0] == "e" else (
                        self.property_predicates if key[0] == "p" else self.value_predicates)
                    index.setdefault(name, []).append(distinct[key])
                distinct[key][1].add(seg_id)

    def affected(self, touch: Touch, now: datetime) -> set[int]:
        """The segments this change can move the contact into or out of (the segments reading
        those follow only if the contact's membership in them changed)."""
        found: set[int] = set()
        for name in touch.events:
            if touch.happened is None:
                found.update(self.by_event.get(name, ()))
                continue
            facts = [f for f in touch.happened if f[0] == name]
            for c, segments in self.event_conditions.get(name, ()):
                if not segments <= found and matching_events(facts, name, c.url_contains, c.where, now):
                    found |= segments
        for key in touch.properties:
            if key not in touch.property_values:
                found.update(self.by_property.get(key, ()))
                continue
            before, after = touch.property_values[key]
            for p, segments in self.property_predicates.get(key, ()):
                if not segments <= found and p(before, now) != p(after, now):
                    found |= segments
        for name in touch.fields:
            if name not in touch.values:
                found.update(self.by_field.get(name, ()))
                continue
            # A score (say) that moved from 5 to 8 while the segment asks for more than 20.
            before, after = touch.values[name]
            for p, segments in self.value_predicates.get(name, ()):
                if not segments <= found and p(before, now) != p(after, now):
                    found |= segments
        return found

    def with_dependents(self, segments: set[int]) -> set[int]:
        closed, todo = set(segments), list(segments)
        while todo:
            for dep in self.dependents.get(todo.pop(), ()):
                if dep not in closed:
                    closed.add(dep)
                    todo.append(dep)
        return closed


def _value_field(condition: Any) -> str | None:
    if isinstance(condition, NumberFieldCondition | TimeFieldCondition):
        return condition.field
    if isinstance(condition, GradeCondition):
        return "grade"
    return None


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def _value_predicate(condition: Any) -> Predicate:
    """The condition as a function of its field's value, as the snapshot's evaluation reads it."""
    if isinstance(condition, GradeCondition):
        return lambda grade, now: py_grade(condition, grade)
    if isinstance(condition, TimeFieldCondition):
        days, within = timedelta(days=condition.days), condition.op == "within_days"
        return lambda at, now: (at >= now - days) == within
    compare, bound = _COMPARE[condition.op], condition.value
    return lambda value, now: compare(value or 0, bound)


def _property_predicate(condition: PropertyCondition) -> Predicate:
    key = condition.key
    return lambda value, now: py_property(condition, {} if value is MISSING else {key: value}, now)
