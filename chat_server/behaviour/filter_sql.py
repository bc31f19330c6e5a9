"""Contact filters in SQL: one boolean over `contact` (correlated subqueries for events) that
runs on SQLite and PostgreSQL alike, from the same definition the Python evaluation
(`snapshot.py`) follows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, String, and_, case, cast, exists, false, func, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from ..models import Contact, Event
from .filters import (
    DATE_OPS,
    ContactFilter,
    EventCondition,
    NumberFieldCondition,
    PropertyCondition,
    TextFieldCondition,
    TimeFieldCondition,
)
from .text import contains


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


def property_text(dialect: str, key: str) -> ColumnElement[Any]:
    """A contact property as text (NULL when absent), for SQL that narrows before Python decides."""
    return _Json(dialect, key).text()


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
