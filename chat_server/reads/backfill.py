"""What a socket missed, from the database, as the frames it would have got."""

from __future__ import annotations

from sqlmodel import col, select

from ..db import Database
from ..models import Conversation, Message
from ..views import staff_message_frame, visitor_message_frame


async def staff_frames(db: Database, conversation_id: int, after_seq: int) -> list[tuple[int, str]]:
    """Every message after `after_seq`, with its seq."""
    async with db.read() as s:
        rows = (await s.exec(
            select(Message).where(Message.conversation_id == conversation_id, Message.seq > after_seq)
            .order_by(col(Message.seq))
        )).all()
    return [(m.seq, staff_message_frame(m)) for m in rows]


async def visitor_frames(db: Database, conversation_id: int, contact_id: int | None,
                         after_public_seq: int) -> list[tuple[int, str]]:
    """What the contact may see after `after_public_seq`, with its public seq; only from the
    contact's own conversation."""
    async with db.read() as s:
        rows = (await s.exec(
            select(Message)
            .join(Conversation, Conversation.id == Message.conversation_id)  # type: ignore[arg-type]
            .where(Message.conversation_id == conversation_id, Conversation.contact_id == contact_id,
                   col(Message.public_seq) > after_public_seq)
            .order_by(col(Message.public_seq))
        )).all()
    return [(m.public_seq or 0, visitor_message_frame(m)) for m in rows]
