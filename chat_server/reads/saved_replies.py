"""Saved replies, by shortcut."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select

from ..db import Database
from ..models import SavedReply


async def all_saved_replies(db: Database) -> Sequence[SavedReply]:
    async with db.read() as s:
        return (await s.exec(select(SavedReply).order_by(col(SavedReply.shortcut)))).all()
