"""Operators' availability follows their inbox: online when they log in (unless they chose to
keep their last state), away when no inbox of theirs has been open for a while.

Whether an inbox is open is known per process (the hub's sockets); with several processes the
database holds the answer: every process stamps `operator.inbox_seen_at` for the operators it
has sockets for, on connect, on close and every heartbeat, and any process's sweep sends away
the online operators whose stamp is older than CHAT_AWAY_AFTER_MINUTES. A process that dies
stops stamping, so its operators go away in time too; nothing has to be cleaned up after it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col, select

from ..models import Availability, AvailabilityOnLogin, Operator, Role
from ..models.types import utcnow
from ..runtime import Runtime
from .operators import check_availability_on_login, count_online, do_set_availability, do_set_own_setting, presence_dispatches


async def do_set_availability_on_login(rt: Runtime, operator: Operator, value: str) -> Operator:
    """Online at every login, or the state they left in."""
    return await do_set_own_setting(rt, operator, "availability_on_login", check_availability_on_login(value))


async def do_arrive_after_login(rt: Runtime, operator: Operator) -> Operator:
    """Logging in is being there: online, unless the operator keeps their last state. The
    stamp gives them the away period to open an inbox before the sweep counts them gone."""
    await do_mark_inbox_seen(rt, [operator.id or 0])
    if operator.role == Role.sales:
        return operator  # they never answer: "online" would mean nothing to a visitor
    if operator.availability_on_login == AvailabilityOnLogin.online and operator.availability != Availability.online:
        return await do_set_availability(rt, operator, Availability.online)
    return operator


async def do_mark_inbox_seen(rt: Runtime, operator_ids: Collection[int], at: datetime | None = None) -> None:
    if not operator_ids:
        return
    async with rt.db.write() as s:
        await s.exec(update(Operator).where(col(Operator.id).in_(sorted(operator_ids)))
                     .values(inbox_seen_at=at or utcnow()))


async def do_away_idle_operators(rt: Runtime, now: datetime | None = None) -> list[int]:
    """Online operators without an open inbox for the away period become away (and the
    widgets hear of it when nobody is left). Returns who was sent away."""
    minutes = rt.settings.away_after_minutes
    if minutes <= 0:
        return []
    cutoff = (now or utcnow()) - timedelta(minutes=minutes)
    idle = or_(col(Operator.inbox_seen_at).is_(None), col(Operator.inbox_seen_at) < cutoff)
    async with rt.db.read() as s:
        candidates = (await s.exec(select(Operator).where(
            Operator.availability == Availability.online, idle))).all()
    gone: list[int] = []
    for operator in candidates:
        # Decided again in the write: a socket opened since the read keeps them online, and of
        # two processes sweeping at once only one sends them away.
        async with rt.db.write() as s:
            was_online = await count_online(s)
            result = await s.exec(update(Operator).where(
                col(Operator.id) == operator.id, col(Operator.availability) == Availability.online, idle,
            ).values(availability=Availability.away))
            if result.rowcount == 1:
                gone.append(operator.id or 0)
                operator.availability = Availability.away
                s.publish(presence_dispatches(operator, was_online, await count_online(s)))
    return gone
