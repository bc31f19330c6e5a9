"""Contact filters: conditions on a contact's fields, properties and events, AND-combined.

The same model serves the contacts table of sales reps and (later) saved segments. A filter is
plain data (pydantic, JSON in and out); `contact_filter_clause` turns it into one SQL boolean
over the `contact` table that runs on SQLite and PostgreSQL alike; `matches` evaluates it on a
contact snapshot in Python (the rules engine's view of one contact). Both follow one
definition, and a test holds them to each other.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Float, String, and_, case, cast, exists, false, func, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from ..models import Contact, Event
from ..models.types import storable
from .text import contains

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _is_date(value: str) -> bool:
    if not _ISO_DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


# Text that reaches the database as a parameter: a filter holding NUL is invalid, not a failed query.
Storable = AfterValidator(storable)

TEXT_FIELDS = ("name", "email", "phone", "first_referrer", "first_landing_page")
NUMBER_FIELDS = ("score", "sessions")
TIME_FIELDS = ("first_seen_at", "last_seen_at")

TextOp = Literal["is_set", "not_set", "eq", "ne", "contains", "in_list"]
NumberOp = Literal["eq", "ne", "gt", "gte", "lt", "lte"]
TimeOp = Literal["within_days", "older_than_days"]
PropertyOp = Literal[
    "is_set", "not_set", "eq", "ne", "contains", "gt", "gte", "lt", "lte", "in_list",
    "before", "after", "within_days", "older_than_days",
]
DATE_OPS = ("before", "after", "within_days", "older_than_days")
Unit = Literal["minutes", "hours", "days"]
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}

# A property key is looked up inside a JSON path: keep it to characters that need no quoting.
PropertyKey = Annotated[str, Field(min_length=1, max_length=100, pattern=r'^[^"\\\x00-\x1f]+$'), Storable]
Days = Annotated[int, Field(ge=1, le=36_500)]
Scalar = str | float | bool
FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


ListText = Annotated[str, Field(max_length=500), Storable]


class Window(_Strict):
    """The last N minutes, hours or days (at most 100 years)."""

    amount: Annotated[int, Field(ge=1, le=52_560_000)]
    unit: Unit = "days"

    def delta(self) -> timedelta:
        return timedelta(seconds=min(self.amount * UNIT_SECONDS[self.unit], 36_500 * 86_400))


class TextFieldCondition(_Strict):
    """name / email / phone / first referrer / landing page: set, not set, equal, contains."""

    kind: Literal["field"] = "field"
    field: Literal["name", "email", "phone", "first_referrer", "first_landing_page"]
    op: TextOp
    value: Annotated[str, Field(max_length=500), Storable] | None = None
    values: Annotated[list[ListText], Field(min_length=1, max_length=100)] | None = None

    @model_validator(mode="after")
    def _value_needed(self) -> TextFieldCondition:
        if self.op in ("eq", "ne", "contains") and not self.value:
            raise ValueError(f"'{self.op}' needs a value")
        if self.op == "in_list" and not self.values:
            raise ValueError("'in_list' needs values")
        return self


class NumberFieldCondition(_Strict):
    """lead score / sessions compared with a number."""

    kind: Literal["number"] = "number"
    field: Literal["score", "sessions"]
    op: NumberOp
    value: FiniteNumber


class TimeFieldCondition(_Strict):
    """first seen / last seen within (or more than) N days ago."""

    kind: Literal["time"] = "time"
    field: Literal["first_seen_at", "last_seen_at"]
    op: TimeOp
    days: Days


class PropertyCondition(_Strict):
    """A property set by the site (`identify`) or an operator: set, equal, contains, compared.
    `eq`/`ne` with a string compare the text (a number 5 equals "5"); with a number or a
    boolean they compare values of that type; gt/gte/lt/lte need a number and only match
    numeric properties."""

    kind: Literal["property"] = "property"
    key: PropertyKey
    op: PropertyOp
    value: Annotated[str, Field(max_length=500), Storable] | FiniteNumber | bool | None = None
    values: Annotated[list[ListText], Field(min_length=1, max_length=100)] | None = None
    days: Days | None = None

    @model_validator(mode="after")
    def _value_fits(self) -> PropertyCondition:
        if self.op in ("is_set", "not_set"):
            return self
        if self.op == "in_list":
            if not self.values:
                raise ValueError("'in_list' needs values")
            return self
        if self.op in ("within_days", "older_than_days"):
            if self.days is None:
                raise ValueError(f"'{self.op}' needs days")
            return self
        if self.op in ("before", "after"):
            if not isinstance(self.value, str) or not _is_date(self.value):
                raise ValueError(f"'{self.op}' needs a date as YYYY-MM-DD")
            return self
        if self.value is None or self.value == "":
            raise ValueError(f"'{self.op}' needs a value")
        if self.op in ("gt", "gte", "lt", "lte") and (isinstance(self.value, bool) or not isinstance(self.value, float | int)):
            raise ValueError(f"'{self.op}' compares numbers")
        if self.op == "contains" and not isinstance(self.value, str):
            raise ValueError("'contains' looks for text")
        return self


class EventCondition(_Strict):
    """Event E happened at least / at most / exactly `count` times, or never, counting only
    events in the window (`within_days`, or `within` N minutes / hours / days), on pages whose
    URL contains `url_contains`, and whose own properties meet every `where` condition."""

    kind: Literal["event"] = "event"
    name: Annotated[str, Field(min_length=1, max_length=200), Storable]
    op: Literal["at_least", "at_most", "exactly", "never"] = "at_least"
    count: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    within_days: Days | None = None
    within: Window | None = None
    url_contains: Annotated[str, Field(min_length=1, max_length=500), Storable] | None = None
    where: Annotated[list[PropertyCondition], Field(max_length=10)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _count_fits(self) -> EventCondition:
        if self.op == "at_least" and self.count < 1:
            raise ValueError("'at_least' counts from 1 (use 'never' for none)")
        if self.within_days is not None and self.within is not None:
            raise ValueError("give within_days or within, not both")
        return self

    def window(self) -> timedelta | None:
        if self.within is not None:
            return self.within.delta()
        return timedelta(days=self.within_days) if self.within_days is not None else None


Condition = Annotated[
    TextFieldCondition | NumberFieldCondition | TimeFieldCondition | PropertyCondition | EventCondition,
    Field(discriminator="kind"),
]


class ContactFilter(_Strict):
    """Every condition must hold (AND). No conditions: every contact."""

    all: Annotated[list[Condition], Field(max_length=30)] = Field(default_factory=list)


# --- SQL ------------------------------------------------------------------------------------

class _Json:
    """Reading one key of `contact.properties` on either database."""

    def __init__(self, dialect: str, key: str, column: Any = None) -> None:
        self.pg = dialect == "postgresql"
        self.key = key
        # The contact's properties, or (for an event condition's `where`) the event's.
        self.column = Contact.__table__.c.properties if column is None else column  # type: ignore[attr-defined]

    def type(self) -> ColumnElement[Any]:
        """'string' / 'number' / 'boolean' / 'object' / 'array' / 'null', or NULL when absent."""
        if self.pg:
            return func.jsonb_typeof(self.column.op("->")(self.key))
        sqlite_type = func.json_type(self.column, self._path())
        return case(
            (sqlite_type == "text", "string"), (sqlite_type.in_(["integer", "real"]), "number"),
            (sqlite_type.in_(["true", "false"]), "boolean"), else_=sqlite_type,
        )

    def text(self) -> ColumnElement[Any]:
        """The value as text: strings as they are, numbers in their usual form, true/false."""
        if self.pg:
            as_text: ColumnElement[Any] = self.column.op("->>", return_type=String)(self.key)
            return as_text
        raw = func.json_extract(self.column, self._path())
        sqlite_type = func.json_type(self.column, self._path())
        return case((sqlite_type == "true", "true"), (sqlite_type == "false", "false"), else_=cast(raw, String))

    def number(self) -> ColumnElement[Any]:
        """The value as a number when it is one, else NULL (never a cast error on text)."""
        if self.pg:
            return case((self.type() == "number", cast(self.column.op("->>")(self.key), Float)), else_=None)
        return case((self.type() == "number", cast(func.json_extract(self.column, self._path()), Float)), else_=None)

    def _path(self) -> str:
        return f'$."{self.key}"'


def _known(clause: ColumnElement[bool]) -> ColumnElement[bool]:
    """SQL's unknown (NULL, e.g. a missing property) as false, so NOT of it is true."""
    return case((clause, true()), else_=false())


def _set(column: ColumnElement[Any]) -> ColumnElement[bool]:
    return and_(column.is_not(None), column != "")


def _compare(left: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool] = {
        "eq": lambda: left == value, "ne": lambda: left != value, "gt": lambda: left > value,
        "gte": lambda: left >= value, "lt": lambda: left < value, "lte": lambda: left <= value,
    }[op]()
    return result


def _text_field(cond: TextFieldCondition) -> ColumnElement[bool]:
    column = getattr(Contact.__table__.c, cond.field)  # type: ignore[attr-defined]
    if cond.op == "is_set":
        return _set(column)
    if cond.op == "not_set":
        return not_(_set(column))
    if cond.op == "in_list":
        assert cond.values is not None
        return and_(column.is_not(None), func.lower(column).in_([v.lower() for v in cond.values]))
    assert cond.value is not None
    if cond.op == "contains":
        return and_(column.is_not(None), contains(column, cond.value))
    if cond.op == "eq":
        return and_(column.is_not(None), func.lower(column) == cond.value.lower())
    return or_(column.is_(None), func.lower(column) != cond.value.lower())


def _binary(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """Text compared byte by byte on both databases (PostgreSQL's default collation is not)."""
    return column.collate("C") if dialect == "postgresql" else column


def _property(cond: PropertyCondition, dialect: str, now: datetime, column: Any = None) -> ColumnElement[bool]:
    j = _Json(dialect, cond.key, column)
    is_set = _known(and_(j.type().is_not(None), j.type() != "null"))
    if cond.op == "is_set":
        return is_set
    if cond.op == "not_set":
        return not_(is_set)
    if cond.op == "in_list":
        assert cond.values is not None
        return _known(and_(j.type().in_(["string", "number", "boolean"]), j.text().in_(cond.values)))
    if cond.op in DATE_OPS:
        # A date property is text starting YYYY-MM-DD; it is compared by that day.
        day = _binary(func.substr(j.text(), 1, 10), dialect)
        looks_like_date = and_(j.type() == "string", j.text().like("____-__-__%"))
        if cond.op in ("before", "after"):
            assert isinstance(cond.value, str)
            bound = cond.value
        else:
            assert cond.days is not None
            bound = (now - timedelta(days=cond.days)).date().isoformat()
        compared = day < bound if cond.op in ("before", "older_than_days") else (
            day > bound if cond.op == "after" else day >= bound)
        return _known(and_(looks_like_date, compared))
    value = cond.value
    if cond.op == "contains":
        assert isinstance(value, str)
        return _known(and_(is_set, contains(j.text(), value)))
    if isinstance(value, bool):
        matched = and_(j.type() == "boolean", j.text() == ("true" if value else "false"))
    elif isinstance(value, int | float) and cond.op in ("eq", "ne"):
        matched = and_(j.type() == "number", j.number() == float(value))
    elif cond.op in ("eq", "ne"):
        matched = and_(j.type().in_(["string", "number", "boolean"]), j.text() == value)
    else:
        return _known(and_(j.type() == "number", _compare(j.number(), cond.op, float(value))))  # type: ignore[arg-type]
    return _known(matched) if cond.op == "eq" else not_(_known(matched))


def event_where(
    name: str, url_contains: str | None, where: list[PropertyCondition], dialect: str, now: datetime,
) -> list[ColumnElement[bool]]:
    """The contact's events of that name, on such pages, whose own properties match."""
    event = Event.__table__.c  # type: ignore[attr-defined]
    found = [event.contact_id == Contact.__table__.c.id, event.name == name]  # type: ignore[attr-defined]
    if url_contains is not None:
        found.append(and_(event.url.is_not(None), contains(event.url, url_contains)))
    found.extend(_property(p, dialect, now, event.properties) for p in where)
    return found


def _event(cond: EventCondition, dialect: str, now: datetime) -> ColumnElement[bool]:
    event = Event.__table__.c  # type: ignore[attr-defined]
    where = event_where(cond.name, cond.url_contains, cond.where, dialect, now)
    window = cond.window()
    if window is not None:
        where.append(event.occurred_at >= now - window)
    if cond.op == "never" or (cond.op in ("at_most", "exactly") and cond.count == 0):
        return not_(exists().where(*where))
    if cond.op == "at_least" and cond.count == 1:
        return exists().where(*where)
    counted = select(func.count()).select_from(Event.__table__).where(*where).scalar_subquery()  # type: ignore[attr-defined]
    if cond.op == "at_most":
        return counted <= cond.count
    if cond.op == "exactly":
        return counted == cond.count
    return counted >= cond.count


def condition_clause(cond: Any, dialect: str, now: datetime) -> ColumnElement[bool]:
    if isinstance(cond, TextFieldCondition):
        return _text_field(cond)
    if isinstance(cond, NumberFieldCondition):
        return _compare(getattr(Contact.__table__.c, cond.field), cond.op, cond.value)  # type: ignore[attr-defined]
    if isinstance(cond, TimeFieldCondition):
        column = getattr(Contact.__table__.c, cond.field)  # type: ignore[attr-defined]
        since = now - timedelta(days=cond.days)
        return column >= since if cond.op == "within_days" else column < since  # type: ignore[no-any-return]
    if isinstance(cond, PropertyCondition):
        return _property(cond, dialect, now)
    assert isinstance(cond, EventCondition)
    return _event(cond, dialect, now)


def contact_filter_clause(flt: ContactFilter, dialect: str, now: datetime) -> ColumnElement[bool]:
    """One SQL boolean over `contact` (correlated subqueries for events). `dialect` is
    "sqlite" or "postgresql"; `now` anchors the day windows."""
    if not flt.all:
        return true()
    return and_(*(condition_clause(c, dialect, now) for c in flt.all))


# --- Python ---------------------------------------------------------------------------------

EventFact = tuple[str, str | None, datetime] | tuple[str, str | None, datetime, dict[str, Any]]


class Snapshot(BaseModel):
    """What the filter looks at for one contact. Events are (name, url, when[, properties]);
    a segment also looks at the grade and the segments the contact is in."""

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
    properties: dict[str, Any] = Field(default_factory=dict)
    events: list[EventFact] = Field(default_factory=list)
    segments: set[int] = Field(default_factory=set)


def _py_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and not math.isinf(value):
        return repr(value)
    if isinstance(value, str | int | float):
        return str(value)
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"))


def _py_compare(left: float, op: str, right: float) -> bool:
    return {"eq": left == right, "ne": left != right, "gt": left > right, "gte": left >= right,
            "lt": left < right, "lte": left <= right}[op]


def _py_text_field(cond: TextFieldCondition, text: str | None) -> bool:
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
        return present and isinstance(cond.value, str) and cond.value.lower() in (_py_text(raw) or "").lower()
    if cond.op == "in_list":
        assert cond.values is not None
        return isinstance(raw, str | int | float) and _py_text(raw) in cond.values
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
        return is_number and isinstance(cond.value, int | float) and _py_compare(float(raw), cond.op, float(cond.value))
    if isinstance(cond.value, bool):
        matched = isinstance(raw, bool) and raw == cond.value
    elif isinstance(cond.value, int | float):
        matched = is_number and float(raw) == float(cond.value)
    else:
        matched = isinstance(raw, str | int | float) and _py_text(raw) == cond.value
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


def _py_condition(cond: Any, snap: Snapshot, now: datetime) -> bool:
    if isinstance(cond, TextFieldCondition):
        return _py_text_field(cond, getattr(snap, cond.field))
    if isinstance(cond, NumberFieldCondition):
        return _py_compare(getattr(snap, cond.field), cond.op, cond.value)
    if isinstance(cond, TimeFieldCondition):
        since = now - timedelta(days=cond.days)
        at = snap.first_seen_at if cond.field == "first_seen_at" else snap.last_seen_at
        return at >= since if cond.op == "within_days" else at < since
    if isinstance(cond, PropertyCondition):
        return py_property(cond, snap.properties, now)
    assert isinstance(cond, EventCondition)
    times = matching_events(snap.events, cond.name, cond.url_contains, cond.where, now)
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
    return all(_py_condition(c, snap, now) for c in flt.all)
