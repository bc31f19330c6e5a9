"""Contact filters in Python: one contact's snapshot (card, events, segments) evaluated by
the same definition the SQL form (`filter_sql.py`) follows — the live check's view."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .filters import (
    DATE_OPS,
    ContactFilter,
    EventCondition,
    NumberFieldCondition,
    PropertyCondition,
    TextFieldCondition,
    TimeFieldCondition,
)

EventFact = tuple[str, str | None, datetime] | tuple[str, str | None, datetime, dict[str, Any]]


@dataclass(kw_only=True, eq=False)
class Snapshot:
    """What the filter looks at for one contact. Events are (name, url, when[, properties]);
    a segment also looks at the grade and the segments the contact is in. (A plain dataclass:
    the live check builds hundreds per batch.)"""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    first_referrer: str | None = None
    first_landing_page: str | None = None
    score: int = 0
    sessions: int = 0
    grade: str | None = None
    first_seen_at: datetime
    last_seen_at: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    events: list[EventFact] = field(default_factory=list)
    segments: set[int] = field(default_factory=set)
    _by_name: dict[str, list[EventFact]] | None = field(default=None, repr=False)

    def events_named(self, name: str) -> list[EventFact]:
        """The events of one name (grouped once, when first asked: the events are complete by then)."""
        if self._by_name is None:
            self._by_name = {}
            for fact in self.events:
                self._by_name.setdefault(fact[0], []).append(fact)
        return self._by_name.get(name, [])


def py_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and not math.isinf(value):
        return repr(value)
    if isinstance(value, str | int | float):
        return str(value)
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"))


def py_compare(left: float, op: str, right: float) -> bool:
    return {"eq": left == right, "ne": left != right, "gt": left > right, "gte": left >= right,
            "lt": left < right, "lte": left <= right}[op]


def py_text_field(cond: TextFieldCondition, text: str | None) -> bool:
    if cond.op == "is_set":
        return bool(text)
    if cond.op == "not_set":
        return not text
    if cond.op == "in_list":
        assert cond.values is not None
        return text is not None and text.lower() in {v.lower() for v in cond.values}
    assert cond.value is not None
    if cond.op == "contains":
        return text is not None and cond.value.lower() in text.lower()
    equal = text is not None and text.lower() == cond.value.lower()
    return equal if cond.op == "eq" else not equal


def py_property(cond: PropertyCondition, properties: dict[str, Any], now: datetime) -> bool:
    present = cond.key in properties and properties[cond.key] is not None
    raw: Any = properties.get(cond.key)
    if cond.op in ("is_set", "not_set"):
        return present if cond.op == "is_set" else not present
    is_number = isinstance(raw, int | float) and not isinstance(raw, bool)
    if cond.op == "contains":
        return present and isinstance(cond.value, str) and cond.value.lower() in (py_text(raw) or "").lower()
    if cond.op == "in_list":
        assert cond.values is not None
        return isinstance(raw, str | int | float) and py_text(raw) in cond.values
    if cond.op in DATE_OPS:
        if not (isinstance(raw, str) and len(raw) >= 10 and raw[4] == "-" and raw[7] == "-"):
            return False
        day = raw[:10]
        if cond.op in ("before", "after"):
            assert isinstance(cond.value, str)
            bound = cond.value
        else:
            assert cond.days is not None
            bound = (now - timedelta(days=cond.days)).date().isoformat()
        day_b, bound_b = day.encode("utf-8"), bound.encode("utf-8")
        if cond.op in ("before", "older_than_days"):
            return day_b < bound_b
        return day_b > bound_b if cond.op == "after" else day_b >= bound_b
    if cond.op in ("gt", "gte", "lt", "lte"):
        return is_number and isinstance(cond.value, int | float) and py_compare(float(raw), cond.op, float(cond.value))
    if isinstance(cond.value, bool):
        matched = isinstance(raw, bool) and raw == cond.value
    elif isinstance(cond.value, int | float):
        matched = is_number and float(raw) == float(cond.value)
    else:
        matched = isinstance(raw, str | int | float) and py_text(raw) == cond.value
    return matched if cond.op == "eq" else not matched


def matching_events(
    events: list[EventFact], name: str, url_contains: str | None, where: list[PropertyCondition], now: datetime,
) -> list[datetime]:
    """When the contact's events of that name, on such pages, with such properties happened."""
    needle = url_contains.lower() if url_contains else None
    found = []
    for fact in events:
        if fact[0] != name:
            continue
        url = fact[1]
        if needle is not None and (url is None or needle not in url.lower()):
            continue
        if where:
            props: dict[str, Any] = fact[3] if len(fact) > 3 else {}
            if not all(py_property(p, props, now) for p in where):
                continue
        found.append(fact[2])
    return found


def py_condition(cond: Any, snap: Snapshot, now: datetime) -> bool:
    if isinstance(cond, TextFieldCondition):
        return py_text_field(cond, getattr(snap, cond.field))
    if isinstance(cond, NumberFieldCondition):
        return py_compare(getattr(snap, cond.field), cond.op, cond.value)
    if isinstance(cond, TimeFieldCondition):
        since = now - timedelta(days=cond.days)
        at = snap.first_seen_at if cond.field == "first_seen_at" else snap.last_seen_at
        return at >= since if cond.op == "within_days" else at < since
    if isinstance(cond, PropertyCondition):
        return py_property(cond, snap.properties, now)
    assert isinstance(cond, EventCondition)
    times = matching_events(snap.events_named(cond.name), cond.name, cond.url_contains, cond.where, now)
    window = cond.window()
    n = len(times) if window is None else sum(1 for when in times if when >= now - window)
    if cond.op == "never":
        return n == 0
    if cond.op == "at_most":
        return n <= cond.count
    if cond.op == "exactly":
        return n == cond.count
    return n >= cond.count


def matches(flt: ContactFilter, snap: Snapshot, now: datetime) -> bool:
    return all(py_condition(c, snap, now) for c in flt.all)
