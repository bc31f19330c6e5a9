"""Messages: a thread's history page and one message as it arrived."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select

from ..db import Database
from ..models import Conversation, Message


async def history(db: Database, conversation_id: int, before_seq: int | None, limit: int) -> Sequence[Message] | None:
    """Newest first, `limit + 1` of them so the caller sees whether more follow; None: no such
    conversation."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if before_seq is not None:
        query = query.where(col(Message.seq) < before_seq)
    async with db.read() as s:
        if await s.get(Conversation, conversation_id) is None:
            return None
        return (await s.exec(query.order_by(col(Message.seq).desc()).limit(limit + 1))).all()


async def message(db: Database, message_id: int) -> Message | None:
    """One message, if it and its conversation exist."""
    async with db.read() as s:
        found = await s.get(Message, message_id)
        conv = await s.get(Conversation, found.conversation_id) if found else None
    return found if conv is not None else None
