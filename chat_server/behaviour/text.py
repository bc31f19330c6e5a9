"""Text as the database takes it: what can be stored, and how it is searched.

Shared by the actions (which refuse what cannot be stored), the filters (which refuse it as
invalid input) and the reads (which search with it), so each rule is written once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.elements import ColumnElement


def unstorable(value: str) -> str | None:
    """Why PostgreSQL would refuse this text (it takes neither NUL nor lone surrogates), or None."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode"
    return None


def contains(column: ColumnElement[Any] | Mapped[Any], needle: str) -> ColumnElement[bool]:
    """Case-insensitive substring search in which `%` and `_` in the needle are themselves.
    The needle is lowered in Python (all of Unicode; SQLite's lower() knows only ASCII) and
    the column by the database; SQLAlchemy's autoescape does the escaping."""
    return func.lower(column).contains(needle.lower(), autoescape=True)
