"""Scores that change without an event: decayed points settled by the sweep, and every score
recomputed in the background after a rule or the grading changed — a few hundred contacts
per transaction, so ingestion goes on between them."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import Contact, Event, ScoreEntry
from ..models.types import utcnow
from ..runtime import Runtime
from .membership import evaluate_contacts, run
from .scoring import ENTRY, Happened, card_entries, event_entries, scoring_state, settle_scores

log = logging.getLogger(__name__)
CONTACT = Contact.__table__.c  # type: ignore[attr-defined]
EVENT = Event.__table__.c  # type: ignore[attr-defined]
RECOMPUTE_CHUNK = 300


# --- the sweep: decayed points --------------------------------------------------------------

async def do_settle_expired_points(rt: Runtime, now: datetime | None = None) -> int:
    """Contacts holding points that expired and whose score still counts them get their score
    (and grade, and segments) settled. Returns how many changed."""
    now = now or utcnow()
    async with rt.db.read() as s:
        counted = select(func.coalesce(func.sum(ENTRY.points), 0)).where(
            ENTRY.contact_id == CONTACT.id, or_(ENTRY.expires_at.is_(None), ENTRY.expires_at > now)).scalar_subquery()
        expired = select(ENTRY.id).where(ENTRY.contact_id == CONTACT.id, ENTRY.expires_at <= now).exists()
        stale = [r[0] for r in (await run(s, select(CONTACT.id).where(expired, CONTACT.score != counted))).all()]
    for start in range(0, len(stale), RECOMPUTE_CHUNK):
        chunk = stale[start:start + RECOMPUTE_CHUNK]
        async with rt.db.write() as s:
            await _lock(s, chunk)
            index = await scoring_state(rt).get(s)
            changed = await settle_scores(s, index, chunk, now)
            await evaluate_contacts(s, rt, changed, now)
    return len(stale)


async def _lock(s: AsyncSession, contact_ids: list[int]) -> None:
    bind = s.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await run(s, select(CONTACT.id).where(CONTACT.id.in_(contact_ids)).order_by(CONTACT.id).with_for_update())


# --- recomputing every score after a rule changed -------------------------------------------

def start_recompute(rt: Runtime) -> asyncio.Task[None]:
    """Recompute every score in the background; a change made meanwhile runs it once more."""
    state = scoring_state(rt)
    if state.running and state.task is not None:
        state.again = True
        return state.task
    state.running, state.again = True, False
    state.task = asyncio.create_task(_recompute_loop(rt))
    return state.task


async def _recompute_loop(rt: Runtime) -> None:
    state = scoring_state(rt)
    try:
        while True:
            await do_recompute_scores(rt)
            if not state.again:
                break
            state.again = False
    except Exception:
        log.exception("recomputing scores failed")
    finally:
        state.running = False


async def do_recompute_scores(rt: Runtime, now: datetime | None = None) -> None:
    """Every contact's points replayed from their events under the current rules."""
    state = scoring_state(rt)
    async with rt.db.read() as s:
        ids = [r[0] for r in (await run(s, select(CONTACT.id).where(CONTACT.merged_into_id.is_(None))
                                        .order_by(CONTACT.id))).all()]
    state.total, state.done = len(ids), 0
    for start in range(0, len(ids), RECOMPUTE_CHUNK):
        chunk = ids[start:start + RECOMPUTE_CHUNK]
        when = now or utcnow()
        async with rt.db.write() as s:
            await _lock(s, chunk)
            index = await scoring_state(rt).get(s)
            await run(s, delete(ScoreEntry.__table__).where(ENTRY.contact_id.in_(chunk)))  # type: ignore[attr-defined]
            entries: list[dict[str, Any]] = []
            if index.by_event:
                events = (await run(s, select(EVENT.contact_id, EVENT.id, EVENT.name, EVENT.url, EVENT.properties,
                                              EVENT.occurred_at).where(
                    EVENT.contact_id.in_(chunk), EVENT.name.in_(sorted(index.by_event)),
                ).order_by(EVENT.occurred_at, EVENT.id))).all()
                happened = [Happened(r[0], r[1], r[2], r[3], r[4] or {}, r[5]) for r in events]
                counts: dict[tuple[int, int], int] = {}
                for e in event_entries(index, happened):
                    key = (e["contact_id"], e["rule_id"])
                    if index.rules[e["rule_id"]].allowed(counts.get(key, 0)):
                        entries.append(e)
                        counts[key] = counts.get(key, 0) + 1
            if index.card_rules:
                entries += await card_entries(s, index, {cid: list(index.card_rules) for cid in chunk}, when)
            if entries:
                await run(s, insert(ScoreEntry.__table__), entries)  # type: ignore[attr-defined]
            changed = await settle_scores(s, index, chunk, when)
            await evaluate_contacts(s, rt, changed, when)
        state.done += len(chunk)
        await asyncio.sleep(0)  # let the event writer in between chunks
    state.finished_at = utcnow()
