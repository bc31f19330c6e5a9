"""Channel instances: the bots, communities and mailboxes admins added."""

from __future__ import annotations

from sqlmodel import col, select

from ..db import Database
from ..models import ChannelInstance


async def find_instance(db: Database, instance_id: int) -> ChannelInstance | None:
    async with db.read() as s:
        return await s.get(ChannelInstance, instance_id)


async def list_instances(db: Database, enabled_only: bool = False) -> list[ChannelInstance]:
    query = select(ChannelInstance).order_by(col(ChannelInstance.id))
    if enabled_only:
        query = query.where(col(ChannelInstance.enabled).is_(True))
    async with db.read() as s:
        return list((await s.exec(query)).all())
