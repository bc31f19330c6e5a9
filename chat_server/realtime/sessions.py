"""Inbox sockets checked against the database now and then, and open widgets stamped as seen.

Revocations travel as news (realtime/hub.py), which is immediate but can be lost: Redis down
when a logout published, or a session that simply expired. Once a minute each process reads,
in one query, which of its inbox sockets' sessions are still live and with which role, and
closes or downgrades the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..actions.arrivals import WIDGETS_SEEN_SECONDS, do_mark_widgets_seen
from ..actions.presence import do_away_idle_operators, do_mark_inbox_seen
from ..reads.operators import live_sessions
from ..runtime import Runtime
from .hub import Hub

log = logging.getLogger(__name__)

RECHECK_SECONDS = 60.0


async def recheck_sockets(rt: Runtime, hub: Hub) -> None:
    started = time.monotonic()
    hashes = sorted({c.credential for c in hub.operator_connections() if c.credential})
    if hashes:
        hub.confirm_sessions(await live_sessions(rt.db, hashes), started)


async def recheck_forever(rt: Runtime, hub: Hub) -> None:
    while True:
        await asyncio.sleep(RECHECK_SECONDS)
        try:
            await recheck_sockets(rt, hub)
        except Exception:
            log.exception("checking the inbox sockets' sessions failed")


async def presence_forever(rt: Runtime, hub: Hub) -> None:
    """Stamp the operators this process has an inbox open for, then send away the online ones
    nobody has seen in an inbox for the away period (see actions/presence.py)."""
    interval = max(0.2, min(60.0, rt.settings.away_after_minutes * 60 / 4))
    while True:
        await asyncio.sleep(interval)
        try:
            await do_mark_inbox_seen(rt, [op for op, conns in hub.operators.items() if conns])
            await do_away_idle_operators(rt)
        except Exception:
            log.exception("the presence sweep failed")


async def widgets_seen_forever(rt: Runtime, hub: Hub) -> None:
    """Keep the contacts with a widget open in this process "online in the widget"."""
    while True:
        await asyncio.sleep(WIDGETS_SEEN_SECONDS)
        try:
            await do_mark_widgets_seen(rt, [contact for contact, conns in hub.visitors.items() if conns])
        except Exception:
            log.exception("stamping the open widgets as seen failed")
