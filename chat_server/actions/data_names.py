"""The data page's counts: every event and property name seen, its type, how often, when last.
Counted in the writer's transaction, one upsert per batch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import DataName
from .membership import dialect_of, run


def value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-" and value[:4].isdigit():
        return "date"
    return "text"


async def note_data_names(s: AsyncSession, names: list[tuple[str, str, str, int]], now: datetime) -> None:
    """Count (kind, name, type) for the data page: one upsert per batch."""
    if not names:
        return
    table = DataName.__table__  # type: ignore[attr-defined]
    dialect_insert = pg_insert if dialect_of(s) == "postgresql" else sqlite_insert
    # One row per name (an upsert may not touch a row twice); the last type seen wins.
    merged: dict[tuple[str, str], tuple[str, int]] = {}
    for kind, name, kind_type, count in names:
        key = (kind, name[:200])
        merged[key] = (kind_type, merged.get(key, ("", 0))[1] + count)
    rows = [{"kind": k, "name": n, "type": t, "count": c, "last_seen_at": now} for (k, n), (t, c) in sorted(merged.items())]
    stmt = dialect_insert(table).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "name"],
        set_={"count": table.c.count + stmt.excluded.count, "type": stmt.excluded.type,
              "last_seen_at": stmt.excluded.last_seen_at},
    )
    await run(s, stmt)
