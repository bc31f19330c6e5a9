"""Column types shared by the tables, and the text they can store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# JSONB on PostgreSQL (indexable, compact); plain JSON text on SQLite.
JsonColumn = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Always hand out aware UTC datetimes: SQLite forgets the zone, PostgreSQL keeps it."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Any:
        """The conversion, remembering its last value: a batch of events writes the same
        moment into hundreds of rows (the events, their memberships and timeline entries, the
        cards' last seen), and on SQLite each conversion also formats the text."""
        convert = super().bind_processor(dialect)
        if convert is None:
            return None
        last: tuple[Any, Any] = (None, None)

        def process(value: Any) -> Any:
            nonlocal last
            seen = last  # one read and one write of the pair: threads sharing it see a whole pair
            if value is seen[0] and value is not None:  # datetimes are immutable: the same object, the same answer
                return seen[1]
            result = convert(value)
            last = (value, result)
            return result

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def storable(value: str) -> str:
    """Text the database can take: PostgreSQL stores neither NUL nor lone surrogates (SQLite
    would, and the two must answer alike), so such text is refused before it reaches a query."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("is not valid Unicode") from exc
    return value


def unstorable(value: Any, where: tuple[str, ...] = ()) -> tuple[tuple[str, ...], str] | None:
    """Where a parsed request or frame holds text `storable` refuses (dict keys included), and
    why; None when it holds none. One check at the door instead of one per field."""
    if isinstance(value, str):
        try:
            storable(value)
        except ValueError as exc:
            return where, str(exc)
        return None
    if isinstance(value, BaseModel):
        items: Any = ((name, getattr(value, name)) for name in type(value).model_fields)
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple | set | frozenset):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and (found := unstorable(key, (*where, key))) is not None:
            return found
        if (found := unstorable(item, (*where, str(key)))) is not None:
            return found
    return None
