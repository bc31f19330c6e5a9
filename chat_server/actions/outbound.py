"""The outbound queue's writes: replies waiting for their channel, sent, retried, failed, read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import (
    Channel,
    ChannelInstance,
    ContactIdentity,
    Conversation,
    DeliveryState,
    Direction,
    JobState,
    Message,
    OutboundJob,
)
from ..models.types import utcnow
from ..runtime import Runtime
from .publish import message_dispatches

# A claimed reply is this process's for one send (CHAT_OUTBOUND_SEND_TIMEOUT) and a little
# more: a crash mid-send frees it when that ends, not minutes later, and it is sent again.
LEASE_MARGIN = timedelta(seconds=10)


def backoff(attempts: int, first: float = 2.0) -> timedelta:
    """`first`, then doubling (2 s, 4 s, 8 s ... by default), capped at ten minutes."""
    return timedelta(seconds=min(600.0, first * 2 ** (max(1, attempts) - 1)))


async def reply_instance(s: AsyncSession, conv: Conversation, channel: Channel) -> int | None:
    """The bot / community / mailbox the contact last wrote to on `channel`; else the first one
    configured; None when there is none. A reply must leave through an instance the person can hear."""
    last = (await s.exec(
        select(ChannelInstance.id)
        .join(Message, col(Message.channel_instance_id) == ChannelInstance.id)
        .where(Message.conversation_id == conv.id, Message.channel == channel,
               Message.direction == Direction.inbound, col(ChannelInstance.enabled).is_(True))
        .order_by(col(Message.seq).desc()).limit(1)
    )).first()
    if last is None:
        last = (await s.exec(
            select(ChannelInstance.id).where(ChannelInstance.channel == channel.value,
                                             col(ChannelInstance.enabled).is_(True))
            .order_by(col(ChannelInstance.id)).limit(1)
        )).first()
    return last


def enqueue(s: AsyncSession, message: Message, instance_id: int) -> None:
    assert message.id is not None
    s.add(OutboundJob(message_id=message.id, instance_id=instance_id))


@dataclass
class Job:
    """Everything the delivery worker needs to send one queued reply."""

    job_id: int
    attempts: int
    message: Message
    instance: ChannelInstance
    recipient: str | None
    thread: Message | None  # the contact's last inbound message on this channel
    references: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)  # channel ids of the parts already sent


async def claim_due_jobs(rt: Runtime, limit: int = 20) -> list[Job]:
    """Due jobs, leased to this process: a crash mid-send frees them when the lease ends.

    Only the first waiting reply of each conversation is due: one that waits for a retry holds
    back the replies written after it, so the person reads them in the order they were sent.
    A paused channel sends nothing: its replies wait until it is switched on again."""
    now = utcnow()
    lease = timedelta(seconds=rt.settings.outbound_send_timeout) + LEASE_MARGIN
    earlier_job, earlier = aliased(OutboundJob), aliased(Message)
    waiting_before = (
        select(col(earlier_job.id)).join(earlier, col(earlier.id) == col(earlier_job.message_id))
        .where(col(earlier.conversation_id) == col(Message.conversation_id),
               col(earlier_job.state) == JobState.queued, col(earlier.seq) < col(Message.seq))
        .exists())
    async with rt.db.read() as s:
        due = list((await s.exec(
            select(col(OutboundJob.id)).join(Message, col(Message.id) == col(OutboundJob.message_id))
            .join(ChannelInstance, col(ChannelInstance.id) == col(OutboundJob.instance_id)).where(
                OutboundJob.state == JobState.queued, col(OutboundJob.next_attempt_at) <= now,
                col(ChannelInstance.enabled).is_(True),
                or_(col(OutboundJob.locked_until).is_(None), col(OutboundJob.locked_until) < now),
                ~waiting_before)
            .order_by(col(OutboundJob.next_attempt_at), col(OutboundJob.id)).limit(limit)
        )).all())
    claimed: list[int] = []
    for job_id in (j for j in due if j is not None):
        async with rt.db.write() as s:
            result = await s.exec(
                update(OutboundJob).where(
                    col(OutboundJob.id) == job_id, col(OutboundJob.state) == JobState.queued,
                    or_(col(OutboundJob.locked_until).is_(None), col(OutboundJob.locked_until) < now))
                .values(locked_until=now + lease))
            if result.rowcount == 1:
                claimed.append(job_id)
    return [job for job in [await _load(rt, job_id) for job_id in claimed] if job is not None]


async def _load(rt: Runtime, job_id: int) -> Job | None:
    async with rt.db.read() as s:
        job = await s.get(OutboundJob, job_id)
        if job is None:
            return None
        message = await s.get(Message, job.message_id)
        instance = await s.get(ChannelInstance, job.instance_id)
        if message is None:
            return None
        if instance is None:
            await _fail_now(rt, job_id, "the channel this reply was meant for was removed")
            return None
        conv = await s.get(Conversation, message.conversation_id)
        assert conv is not None
        thread = (await s.exec(
            select(Message).where(
                Message.conversation_id == conv.id, Message.channel == message.channel,
                Message.direction == Direction.inbound, col(Message.seq) < message.seq)
            .order_by(col(Message.seq).desc()).limit(1))).first()
        # An automatic email names its address (the card's, which may have no identity yet).
        recipient = message.meta.get("to") or (thread.meta.get("sender_id") if thread is not None else None)
        if recipient is None:
            kind = str(message.channel)  # a plain string when read back, not the enum
            recipient = (await s.exec(
                select(ContactIdentity.value).where(ContactIdentity.contact_id == conv.contact_id,
                                                    ContactIdentity.kind == kind)
                .order_by(col(ContactIdentity.id).desc()).limit(1))).first()
        references: list[str] = []
        if thread is not None:
            references = [*thread.meta.get("references", []), *([thread.external_id] if thread.external_id else [])]
    return Job(job_id, job.attempts, message, instance, recipient, thread, references[-20:], list(job.parts))


async def _finish(rt: Runtime, job_id: int, job_values: dict[str, Any], message_values: dict[str, Any]) -> None:
    async with rt.db.write() as s:
        job = await s.get(OutboundJob, job_id, with_for_update=True)
        if job is None or job.state != JobState.queued:
            return
        for k, v in job_values.items():
            setattr(job, k, v)
        message = await s.get(Message, job.message_id)
        assert message is not None
        for k, v in message_values.items():
            setattr(message, k, v)
        message.updated_at = utcnow()
        s.add_all([job, message])
        conv = await s.get(Conversation, message.conversation_id)
        assert conv is not None
        s.publish(message_dispatches(message, conv, updated=True))


async def do_record_part(rt: Runtime, job_id: int, external_id: str) -> None:
    """One part of a multi-part reply left: remembered before the next part goes, so a retry
    sends only what is missing."""
    async with rt.db.write() as s:
        job = await s.get(OutboundJob, job_id, with_for_update=True)
        if job is not None:
            job.parts = [*job.parts, external_id[:200]]
            s.add(job)


async def do_mark_sent(rt: Runtime, job_id: int, external_id: str, meta: dict[str, Any] | None = None) -> None:
    async with rt.db.read() as s:
        job = await s.get(OutboundJob, job_id)
        message = await s.get(Message, job.message_id) if job else None
    values: dict[str, Any] = {"delivery_state": DeliveryState.sent, "delivery_error": None,
                              "external_id": external_id[:200]}
    if job is not None and len(job.parts) > 1:
        meta = {**(meta or {}), "parts": job.parts}
    if meta and message is not None:
        values["meta"] = {**message.meta, **meta}
    await _finish(rt, job_id, {"state": JobState.done, "locked_until": None, "last_error": None}, values)


async def do_mark_retry(rt: Runtime, job_id: int, attempts: int, reason: str, delay: timedelta | None = None) -> bool:
    """Try again later, or give up after the configured number of attempts; True when it gave up."""
    attempts += 1
    if attempts >= rt.settings.outbound_max_attempts:
        await _fail_now(rt, job_id, f"gave up after {attempts} attempts: {reason}", attempts)
        return True
    async with rt.db.write() as s:
        await s.exec(update(OutboundJob).where(col(OutboundJob.id) == job_id).values(
            attempts=attempts, next_attempt_at=utcnow() + (delay or backoff(attempts, rt.settings.outbound_retry_seconds)),
            locked_until=None, last_error=reason[:1000]))
    return False


async def _fail_now(rt: Runtime, job_id: int, reason: str, attempts: int | None = None) -> None:
    job_values: dict[str, Any] = {"state": JobState.failed, "locked_until": None, "last_error": reason[:1000]}
    if attempts is not None:
        job_values["attempts"] = attempts
    await _finish(rt, job_id, job_values,
                  {"delivery_state": DeliveryState.failed, "delivery_error": reason[:1000]})


async def do_mark_failed(rt: Runtime, job_id: int, reason: str) -> None:
    await _fail_now(rt, job_id, reason)


_LOWER = {
    DeliveryState.delivered: (DeliveryState.sent,),
    DeliveryState.read: (DeliveryState.sent, DeliveryState.delivered),
}


async def do_channel_receipt(
    rt: Runtime, instance_id: int, channel: Channel, sender_id: str, up_to_external_id: str,
    state: DeliveryState = DeliveryState.read,
) -> int:
    """The person read (or received) our replies on a channel up to one of them; returns how
    many messages changed."""
    async with rt.db.read() as s:
        anchor = (await s.exec(select(Message).where(
            Message.channel == channel, Message.external_id == up_to_external_id))).first()
    if anchor is None or anchor.direction != Direction.outbound:
        return 0
    async with rt.db.write() as s:
        changed = list((await s.exec(select(Message).where(
            Message.conversation_id == anchor.conversation_id, Message.channel == channel,
            Message.channel_instance_id == instance_id, Message.direction == Direction.outbound,
            col(Message.seq) <= anchor.seq, col(Message.delivery_state).in_(_LOWER[state])))).all())
        for m in changed:
            m.delivery_state, m.updated_at = state, utcnow()
            s.add(m)
        conv = await s.get(Conversation, anchor.conversation_id)
        assert conv is not None
        s.publish(d for m in changed for d in message_dispatches(m, conv, updated=True))
    return len(changed)
