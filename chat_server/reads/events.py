"""A contact's event timeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_
from sqlmodel import col, select

from ..behaviour.text import contains
from ..db import Database
from ..models import Event
from .contacts import survivor

# The timeline's name filter offers at most this many names.
MAX_NAMES = 200


@dataclass
class Timeline:
    events: Sequence[Event]  # newest first, `limit + 1` of them so the caller sees whether more follow
    names: list[str]  # every event name the contact has, for the filter


async def timeline(db: Database, contact_id: int, name: str | None, q: str | None, before_id: int | None,
                   limit: int) -> Timeline | None:
    """None: no such contact. A merged contact's timeline is its survivor's."""
    async with db.read() as s:
        contact = await survivor(s, contact_id)
        if contact is None:
            return None
        query = select(Event).where(Event.contact_id == contact.id)
        if name:
            query = query.where(Event.name == name)
        if q:
            query = query.where(or_(contains(col(Event.name), q), contains(col(Event.url), q)))
        if before_id is not None:
            query = query.where(col(Event.id) < before_id)
        rows = (await s.exec(query.order_by(col(Event.id).desc()).limit(limit + 1))).all()
        names = (await s.exec(select(Event.name).where(Event.contact_id == contact.id).distinct()
                              .order_by(col(Event.name)).limit(MAX_NAMES))).all()
    return Timeline(rows, list(names))
