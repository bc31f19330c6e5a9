"""What a socket missed, from the database: for resume, gap-filling and resets."""

from __future__ import annotations

from ..reads import backfill as reads
from ..runtime import Runtime
from .connection import Backfill, Connection


def make_backfill(rt: Runtime) -> Backfill:
    async def backfill(conn: Connection, conversation_id: int, after: int) -> list[tuple[int, str]]:
        rt.metrics.backfills.inc()
        if conn.kind == "visitor":
            return await reads.visitor_frames(rt.db, conversation_id, conn.contact_id, after)
        return await reads.staff_frames(rt.db, conversation_id, after)

    return backfill
