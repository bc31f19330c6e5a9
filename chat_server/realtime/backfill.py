"""What a socket missed, from the database: for resume, gap-filling and resets."""

from __future__ import annotations

from sqlmodel import col, select

from ..models import Conversation, Message
from ..runtime import Runtime
from ..views import staff_message_frame, visitor_message_frame
from .connection import Backfill, Connection


def make_backfill(rt: Runtime) -> Backfill:
    async def backfill(conn: Connection, conversation_id: int, after: int) -> list[tuple[int, str]]:
        rt.metrics.backfills.inc()
        async with rt.db.read() as s:
            if conn.kind == "visitor":
                # Only the visitor's own conversation, only what the contact may see.
                rows = (await s.exec(
                    select(Message)
                    .join(Conversation, Conversation.id == Message.conversation_id)  # type: ignore[arg-type]
                    .where(Message.conversation_id == conversation_id, Conversation.contact_id == conn.contact_id,
                           col(Message.public_seq) > after)
                    .order_by(col(Message.public_seq))
                )).all()
                return [(m.public_seq or 0, visitor_message_frame(m)) for m in rows]
            rows = (await s.exec(
                select(Message).where(Message.conversation_id == conversation_id, Message.seq > after)
                .order_by(col(Message.seq))
            )).all()
            return [(m.seq, staff_message_frame(m)) for m in rows]

    return backfill
