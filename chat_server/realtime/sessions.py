"""Inbox sockets checked against the database now and then.

Revocations travel as news (realtime/hub.py), which is immediate but can be lost: Redis down
when a logout published, or a session that simply expired. Once a minute each process reads,
in one query, which of its inbox sockets' sessions are still live and with which role, and
closes or downgrades the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlmodel import col, select

from ..models import Operator, OperatorSession
from ..models.types import utcnow
from ..runtime import Runtime
from .hub import Hub

log = logging.getLogger(__name__)

RECHECK_SECONDS = 60.0
_CHUNK = 500  # bound the statement's parameters


async def live_sessions(rt: Runtime, hashes: list[str]) -> dict[str, str]:
    """Session token hash -> the operator's role, for sessions that still let someone in."""
    live: dict[str, str] = {}
    async with rt.db.read() as s:
        for i in range(0, len(hashes), _CHUNK):
            rows = (await s.exec(
                select(OperatorSession.token_hash, Operator.role)
                .join(Operator, col(Operator.id) == OperatorSession.operator_id)
                .where(col(OperatorSession.token_hash).in_(hashes[i:i + _CHUNK]),
                       col(OperatorSession.expires_at) > utcnow(), Operator.is_active == True)  # noqa: E712
            )).all()
            live.update({token_hash: str(role) for token_hash, role in rows})
    return live


async def recheck_sockets(rt: Runtime, hub: Hub) -> None:
    started = time.monotonic()
    hashes = sorted({c.credential for c in hub.operator_connections() if c.credential})
    if hashes:
        hub.confirm_sessions(await live_sessions(rt, hashes), started)


async def recheck_forever(rt: Runtime, hub: Hub) -> None:
    while True:
        await asyncio.sleep(RECHECK_SECONDS)
        try:
            await recheck_sockets(rt, hub)
        except Exception:
            log.exception("checking the inbox sockets' sessions failed")
