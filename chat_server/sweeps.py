"""Work that comes due by time alone, run by every server process on a timer: snoozed
conversations that wake up, data past its retention, segments with time windows and points
that decayed. Each job is idempotent (a second process doing the same sweep finds nothing
left to do), so no lease is needed for them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .actions.conversations import do_wake_snoozed
from .actions.membership import do_sweep_segments
from .actions.retention import do_prune_closed_conversations, do_prune_events
from .actions.scoring import do_settle_expired_points
from .actions.trigger_sweep import do_sweep_triggers
from .models.types import utcnow
from .runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sweep:
    name: str
    every_seconds: float
    run: Callable[[Runtime], Awaitable[object]]


async def _prune(rt: Runtime) -> None:
    now = utcnow()
    events = await do_prune_events(rt, now)
    conversations = await do_prune_closed_conversations(rt, now)
    if events or conversations:
        log.info("retention pruned", extra={"events": events, "conversations": conversations})


async def _behaviour(rt: Runtime) -> None:
    # Points that decayed first: a segment may read the score.
    await do_settle_expired_points(rt)
    await do_sweep_segments(rt)


SWEEPS = (
    Sweep("wake snoozed conversations", 30, do_wake_snoozed),
    Sweep("retention", 3600, _prune),
    Sweep("segments and decayed points", 60, _behaviour),
    Sweep("triggers that fire with time (inactivity, dates, unread emails)", 60, do_sweep_triggers),
)


async def _forever(rt: Runtime, sweep: Sweep) -> None:
    while True:
        await asyncio.sleep(sweep.every_seconds)
        try:
            await sweep.run(rt)
        except Exception:
            log.exception("sweep failed", extra={"sweep": sweep.name})


def start_sweeps(rt: Runtime) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(_forever(rt, sweep), name=sweep.name) for sweep in SWEEPS]
