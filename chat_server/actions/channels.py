"""Channel instances: admins add, change and remove bots, communities and mailboxes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from ..models import ChannelInstance, Conversation, DeliveryState, JobState, Message, OutboundJob
from ..models.types import utcnow
from ..runtime import Runtime
from .errors import NotFound
from .publish import message_dispatches
from .validation import check_storable

CHANNELS = ("telegram", "vk", "email")


async def do_create_instance(rt: Runtime, channel: str, name: str, config: dict[str, Any]) -> ChannelInstance:
    """`config` was validated by the channel's adapter before it got here."""
    check_storable(name, "name")
    async with rt.db.write() as s:
        instance = ChannelInstance(channel=channel, name=name, config=config)
        s.add(instance)
        await s.flush()
    return instance


async def do_update_instance(
    rt: Runtime, instance_id: int, *, name: str | None = None, enabled: bool | None = None,
    config: dict[str, Any] | None = None,
) -> ChannelInstance:
    async with rt.db.write() as s:
        instance = await s.get(ChannelInstance, instance_id, with_for_update=True)
        if instance is None:
            raise NotFound("channel_not_found", "no such channel instance")
        if name is not None:
            instance.name = check_storable(name, "name")
        if enabled is not None:
            instance.enabled = enabled
        if config is not None:
            instance.config = config
        if config is not None or enabled:
            # New settings (checked on the way in) or a resume: earlier trouble is history.
            instance.last_error = instance.last_error_at = None
        instance.updated_at = utcnow()
        s.add(instance)
    return instance


async def do_delete_instance(rt: Runtime, instance_id: int) -> list[int]:
    """Removes the instance; replies still queued for it fail visibly. Returns their message ids."""
    async with rt.db.write() as s:
        instance = await s.get(ChannelInstance, instance_id)
        if instance is None:
            raise NotFound("channel_not_found", "no such channel instance")
        message_ids = list((await s.exec(select(OutboundJob.message_id).where(
            OutboundJob.instance_id == instance_id, OutboundJob.state == JobState.queued))).all())
        reason = f"the {instance.channel} channel {instance.name!r} was removed"
        if message_ids:
            await s.exec(update(OutboundJob).where(col(OutboundJob.message_id).in_(message_ids))
                         .values(state=JobState.failed, last_error=reason))
            for message in (await s.exec(select(Message).where(col(Message.id).in_(message_ids)))).all():
                message.delivery_state, message.delivery_error, message.updated_at = (
                    DeliveryState.failed, reason, utcnow())
                s.add(message)
                conv = await s.get(Conversation, message.conversation_id)
                assert conv is not None
                s.publish(message_dispatches(message, conv, updated=True))
        await s.delete(instance)
    return message_ids


async def do_save_cursor(rt: Runtime, instance_id: int, cursor: str) -> None:
    async with rt.db.write() as s:
        await s.exec(update(ChannelInstance).where(col(ChannelInstance.id) == instance_id).values(cursor=cursor))


async def do_record_health(rt: Runtime, instance_id: int, error: str | None) -> None:
    """The instance's loop reached its service (`error` None) or met `error`. Leaves
    `updated_at` alone: changing it would restart the loop that reports this."""
    now = utcnow()
    values: dict[str, Any] = {"last_error": error[:1000], "last_error_at": now} if error else {"last_ok_at": now}
    async with rt.db.write() as s:
        await s.exec(update(ChannelInstance).where(col(ChannelInstance.id) == instance_id).values(**values))


async def do_record_update(rt: Runtime, instance_id: int) -> None:
    """An update from the service was stored: the instance is heard from."""
    now = utcnow()
    async with rt.db.write() as s:
        await s.exec(update(ChannelInstance).where(col(ChannelInstance.id) == instance_id)
                     .values(last_update_at=now, last_ok_at=now))
