"""Everything stored about one person, found by following the schema's foreign keys.

The walk starts at the contact (and the contacts merged into it: the same person) and takes
every row that points at a row already taken, table by table, until nothing new is found. It
reads the schema rather than a hand-kept list, so a table added later (scores, segment
memberships, trigger sends) is exported and deleted with the rest without anyone remembering
to add it here. Operators, sites and channels are never reached: nothing of theirs points at
a contact; it is the contact's rows that point at them. Two kinds of rows name the person
without a foreign key and are looked for by what they do name: files in their thread, and
webhook deliveries about them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import Attachment, WebhookDelivery

CHUNK = 500  # values per IN (…): well inside every database's parameter limit


def _tables() -> list[Table]:
    return list(SQLModel.metadata.sorted_tables)


def _key(table: Table) -> Any:
    (column,) = table.primary_key.columns  # every table here has a single-column key
    return column


def _chunks(values: set[Any]) -> Iterator[list[Any]]:
    ordered = sorted(values, key=str)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start:start + CHUNK]


async def owned_keys(s: AsyncSession, contact_id: int) -> dict[str, set[Any]]:
    """Table name -> primary keys of the rows that are this person's."""
    return await reached_keys(s, {"contact": {contact_id}})


async def reached_keys(s: AsyncSession, start: dict[str, set[Any]]) -> dict[str, set[Any]]:
    """Table name -> primary keys of the rows given and of every row that points at them,
    directly or through others (what has to go with them)."""
    taken: dict[str, set[Any]] = {name: set(keys) for name, keys in start.items()}
    attachment = Attachment.__table__  # type: ignore[attr-defined]
    delivery = WebhookDelivery.__table__  # type: ignore[attr-defined]
    changed = True
    while changed:
        changed = False
        for table in _tables():
            key = _key(table)
            found: set[Any] = set()
            for fk in table.foreign_keys:
                wanted = taken.get(fk.column.table.name)
                if not wanted:
                    continue
                for chunk in _chunks(wanted):
                    found.update((await (await s.connection()).execute(select(key).where(fk.parent.in_(chunk)))).scalars())
            if table is attachment and taken.get("conversation"):
                # Files in the person's thread (operators' too) name the conversation without a
                # foreign key: an upload is recorded before any message carries it.
                in_thread = attachment.c.conversation_id
                for chunk in _chunks(taken["conversation"]):
                    found.update((await (await s.connection()).execute(select(key).where(in_thread.in_(chunk)))).scalars())
            if table is delivery and taken.get("contact"):
                # Webhook payloads about the person (waiting, or kept a week after sending) name
                # them in their order key, not by a foreign key: one endpoint's events of one
                # person go out in order (actions/webhook_events.py).
                about = {f"contact:{contact_id}" for contact_id in taken["contact"]}
                for chunk in _chunks(about):
                    found.update((await (await s.connection()).execute(
                        select(key).where(delivery.c.order_key.in_(chunk)))).scalars())
            new = found - taken.get(table.name, set())
            if new:
                taken.setdefault(table.name, set()).update(new)
                changed = True
    return taken


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    return value


async def owned_rows(s: AsyncSession, keys: dict[str, set[Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rows behind `owned_keys`, as JSON-ready dicts, table by table in key order."""
    document: dict[str, list[dict[str, Any]]] = {}
    for table in _tables():
        wanted = keys.get(table.name)
        if not wanted:
            continue
        rows: list[dict[str, Any]] = []
        for chunk in _chunks(wanted):
            result = await (await s.connection()).execute(select(table).where(_key(table).in_(chunk)))
            rows.extend({k: _plain(v) for k, v in row._mapping.items()} for row in result)
        document[table.name] = sorted(rows, key=lambda r: str(r[_key(table).name]).zfill(20))
    return document


async def paths_still_used(s: AsyncSession, paths: set[str]) -> set[str]:
    """Of these stored files, those another upload still points at (files are shared by hash)."""
    column = Attachment.__table__.c.path  # type: ignore[attr-defined]
    used: set[str] = set()
    for chunk in _chunks(paths):
        used.update((await (await s.connection()).execute(select(column).where(column.in_(chunk)))).scalars())
    return used


def delete_order() -> list[Table]:
    """Tables in an order that deletes what points at a row before the row."""
    return list(reversed(_tables()))


def key_of(table: Table) -> Any:
    return _key(table)
