"""Keeping data no longer than the business chose: old behaviour events, and conversations
closed and quiet for long enough (with their messages and files).

Pruning runs in small batches, each its own short transaction, so the server's writers (one
at a time on SQLite) wait for a batch at most, never for the whole clean-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from ..models import Conversation, Event, Status
from ..reads.personal_data import reached_keys
from ..runtime import Runtime
from .personal_data import delete_reached, removed_conversations

EVENT_BATCH = 1000
CONVERSATION_BATCH = 20


async def do_prune_events(rt: Runtime, now: datetime) -> int:
    """Events older than the retention; returns how many went."""
    def due(cutoff: datetime) -> Any:
        return select(Event.id).where(Event.occurred_at < cutoff).order_by(col(Event.id)).limit(EVENT_BATCH)
    return await _prune(rt, "event", rt.settings.event_retention_days, now, due)


async def do_prune_closed_conversations(rt: Runtime, now: datetime) -> int:
    """Conversations closed with no activity for longer than the retention; the contact and
    their card stay (they may write again and get a new thread)."""
    def due(cutoff: datetime) -> Any:
        return select(Conversation.id).where(
            Conversation.status == Status.closed, col(Conversation.last_activity_at) < cutoff,
        ).order_by(col(Conversation.id)).limit(CONVERSATION_BATCH).with_for_update()
    return await _prune(rt, "conversation", rt.settings.closed_conversation_retention_days, now, due)


async def _prune(rt: Runtime, table: str, days: int, now: datetime, due: Callable[[datetime], Any]) -> int:
    """Batch after batch of the rows `due` selects, each deleted with all that points at it."""
    if not days:
        return 0
    cutoff = now - timedelta(days=days)
    pruned = 0
    while True:
        async with rt.db.write() as s:
            ids = set((await s.exec(due(cutoff))).all())
            if not ids:
                return pruned
            keys: dict[str, set[Any]] = await reached_keys(s, {table: ids})
            counts, orphaned = await delete_reached(s, keys)
            s.publish(removed_conversations(keys))
        await rt.files.delete(orphaned)  # committed: no row names these files any more
        pruned += counts.get(table, 0)
        await asyncio.sleep(0)  # let waiting writers in between batches
