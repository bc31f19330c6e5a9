"""How text is searched, written once for the reads and the filters. (What text can be stored
at all is one rule too: `models.types.storable`.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.elements import ColumnElement


def contains(column: ColumnElement[Any] | Mapped[Any], needle: str) -> ColumnElement[bool]:
    """Case-insensitive substring search in which `%` and `_` in the needle are themselves.
    The needle is lowered in Python (all of Unicode; SQLite's lower() knows only ASCII) and
    the column by the database; SQLAlchemy's autoescape does the escaping."""
    return func.lower(column).contains(needle.lower(), autoescape=True)
