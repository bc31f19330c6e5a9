"""Keeping data no longer than the business chose: old behaviour events, and conversations
closed and quiet for long enough (with their messages and files).

Pruning runs in small batches, each its own short transaction, so the server's writers (one
at a time on SQLite) wait for a batch at most, never for the whole clean-up.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlmodel import col, select

from ..models import Conversation, Event, Status
from ..reads.personal_data import reached_keys
from ..runtime import Runtime
from .personal_data import delete_reached, remove_files, removed_conversations

EVENT_BATCH = 1000
CONVERSATION_BATCH = 20


async def do_prune_events(rt: Runtime, now: datetime) -> int:
    """Events older than the retention; returns how many went."""
    days = rt.settings.event_retention_days
    if not days:
        return 0
    cutoff = now - timedelta(days=days)
    pruned = 0
    while True:
        async with rt.db.write() as s:
            ids = set((await s.exec(select(Event.id).where(Event.occurred_at < cutoff)
                                    .order_by(col(Event.id)).limit(EVENT_BATCH))).all())
            if not ids:
                return pruned
            counts, orphaned = await delete_reached(s, await reached_keys(s, {"event": ids}))
            s.on_commit(partial(remove_files, rt, orphaned))
        pruned += counts.get("event", 0)
        await asyncio.sleep(0)  # let waiting writers in between batches


async def do_prune_closed_conversations(rt: Runtime, now: datetime) -> int:
    """Conversations closed with no activity for longer than the retention; the contact and
    their card stay (they may write again and get a new thread)."""
    days = rt.settings.closed_conversation_retention_days
    if not days:
        return 0
    cutoff = now - timedelta(days=days)
    pruned = 0
    while True:
        async with rt.db.write() as s:
            ids = set((await s.exec(select(Conversation.id).where(
                Conversation.status == Status.closed, col(Conversation.last_activity_at) < cutoff,
            ).order_by(col(Conversation.id)).limit(CONVERSATION_BATCH).with_for_update())).all())
            if not ids:
                return pruned
            keys: dict[str, set[Any]] = await reached_keys(s, {"conversation": ids})
            counts, orphaned = await delete_reached(s, keys)
            s.publish(removed_conversations(keys))
            s.on_commit(partial(remove_files, rt, orphaned))
        pruned += counts.get("conversation", 0)
        await asyncio.sleep(0)
