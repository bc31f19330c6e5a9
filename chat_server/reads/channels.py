"""Channel instances: the bots, communities and mailboxes admins added."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select

from ..db import Database
from ..models import ChannelInstance, JobState, OutboundJob


async def find_instance(db: Database, instance_id: int) -> ChannelInstance | None:
    async with db.read() as s:
        return await s.get(ChannelInstance, instance_id)


async def list_instances(db: Database, enabled_only: bool = False) -> list[ChannelInstance]:
    query = select(ChannelInstance).order_by(col(ChannelInstance.id))
    if enabled_only:
        query = query.where(col(ChannelInstance.enabled).is_(True))
    async with db.read() as s:
        return list((await s.exec(query)).all())


@dataclass
class Outgoing:
    """An instance's outgoing queue: replies waiting, and why the one retrying last failed."""

    queued: int = 0
    retry_error: str | None = None


async def outgoing(db: Database, instance_ids: list[int]) -> dict[int, Outgoing]:
    if not instance_ids:
        return {}
    waiting = (col(OutboundJob.state) == JobState.queued) & col(OutboundJob.instance_id).in_(instance_ids)
    found: dict[int, Outgoing] = {}
    async with db.read() as s:
        counts = (await s.exec(select(OutboundJob.instance_id, func.count())
                               .where(waiting).group_by(col(OutboundJob.instance_id)))).all()
        for instance_id, count in counts:
            found[instance_id] = Outgoing(queued=int(count))
        latest = select(func.max(OutboundJob.id)).where(waiting, col(OutboundJob.last_error).is_not(None)) \
            .group_by(col(OutboundJob.instance_id))
        retrying = (await s.exec(select(OutboundJob.instance_id, OutboundJob.last_error)
                                 .where(col(OutboundJob.id).in_(latest)))).all()
        for instance_id, error in retrying:
            found.setdefault(instance_id, Outgoing()).retry_error = error
    return found
