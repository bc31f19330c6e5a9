"""Messages: inbound from contacts, replies and notes from operators, read receipts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import (
    AuthorType,
    Channel,
    Conversation,
    DeliveryState,
    Direction,
    Kind,
    Message,
    Operator,
    Role,
)
from ..models.types import utcnow
from ..runtime import Runtime
from .attachments import bind_attachments
from .contacts import contact_channels, conversation_of
from .errors import ActionError, Forbidden, NotFound
from .inbound_batch import Inbound
from .outbound import enqueue, reply_instance
from .publish import (
    STAFF,
    contact_audience,
    message_dispatches,
    receipt_dispatch,
)
from .thread import Stored, append
from .validation import check_storable, check_text
from .webhook_events import emit_message

REPLY_CHANNELS = (Channel.widget, Channel.telegram, Channel.vk, Channel.email)


async def find_existing(
    rt: Runtime, conversation_id: int | None, client_msg_id: str | None,
    channel: str | None = None, external_id: str | None = None,
) -> Stored | None:
    """The message a retry refers to, by client message id or by the channel's message id."""
    async with rt.db.read() as s:
        query = select(Message)
        if external_id is not None:
            query = query.where(Message.channel == channel, Message.external_id == external_id)
        elif client_msg_id is not None and conversation_id is not None:
            query = query.where(Message.conversation_id == conversation_id, Message.client_msg_id == client_msg_id)
        else:
            return None
        message = (await s.exec(query)).first()
        if message is None:
            return None
        conv = await s.get(Conversation, message.conversation_id)
        assert conv is not None
        return Stored(message, conv, duplicate=True)


async def do_contact_message(
    rt: Runtime, contact_id: int, channel: Channel, text: str, *, client_msg_id: str | None = None,
    external_id: str | None = None, attachments: list[dict[str, Any]] | None = None,
    author_name: str | None = None, channel_instance_id: int | None = None, meta: dict[str, Any] | None = None,
    follow_merges: bool = False,
) -> Stored:
    """A contact wrote. Stored once (retries are recognised by their ids), numbered, published;
    a closed or snoozed conversation opens again. Messages arriving together are written in
    one transaction (see inbound_batch)."""
    if attachments:
        check_storable(text, "text")  # a photo needs no caption
    else:
        check_text(text)
    if external_id is not None:
        existing = await find_existing(rt, None, None, channel, external_id)
        if existing:
            return existing
    try:
        return await rt.inbound_writes.submit(Inbound(
            contact_id, channel, text, client_msg_id, external_id, attachments or [], author_name,
            channel_instance_id, meta or {}, follow_merges,
        ))
    except IntegrityError:
        # The same message raced in twice: the first one stored wins.
        existing = await find_existing(rt, await _conversation_id(rt, contact_id), client_msg_id, channel, external_id)
        if existing is None:
            raise
        return existing


async def _conversation_id(rt: Runtime, contact_id: int) -> int | None:
    async with rt.db.read() as s:
        conv = await conversation_of(s, contact_id)
        return conv.id if conv else None


def check_can_write(operator: Operator) -> None:
    if operator.role == Role.sales:
        raise Forbidden("read_only", "sales accounts can read conversations but not write to them")


async def locked_conversation(s: AsyncSession, conversation_id: int) -> Conversation:
    conv = (
        await s.exec(select(Conversation).where(Conversation.id == conversation_id).with_for_update())
    ).first()
    if conv is None:
        raise NotFound("conversation_not_found", "no such conversation")
    return conv


async def do_send_operator_message(
    rt: Runtime, operator: Operator, conversation_id: int, text: str, *, client_msg_id: str | None = None,
    note: bool = False, channel: str | None = None, attachments: list[dict[str, Any]] | None = None,
) -> Stored:
    """An operator replies (on the contact's last channel unless another is picked) or writes
    a private note. Replying marks the thread read for operators."""
    check_can_write(operator)
    if attachments:
        check_storable(text, "text")  # a file needs no caption
    else:
        check_text(text)
    if client_msg_id is not None:
        existing = await find_existing(rt, conversation_id, client_msg_id)
        if existing:
            return existing
    async with rt.db.write() as s:
        conv = await locked_conversation(s, conversation_id)
        instance_id, error = None, None
        if note:
            picked, direction, kind, state = Channel.internal, Direction.internal, Kind.note, DeliveryState.sent
        else:
            picked = await _reply_channel(s, conv, channel)
            direction, kind = Direction.outbound, Kind.text
            # The widget is delivered by our own sockets; other channels by the delivery queue.
            state = DeliveryState.sent if picked == Channel.widget else DeliveryState.pending
            if picked != Channel.widget:
                instance_id = await reply_instance(s, conv, picked)
                if instance_id is None:  # kept and shown as failed, with the reason
                    state, error = DeliveryState.failed, f"no {picked.value} channel is configured"
        message = append(s, conv, Message(
            conversation_id=conv.id or 0, seq=0,  # numbered by append()
            channel=picked, direction=direction, kind=kind, author_type=AuthorType.operator,
            author_id=operator.id, author_name=operator.name, text=text,
            attachments=attachments or [], client_msg_id=client_msg_id, delivery_state=state,
            channel_instance_id=instance_id, delivery_error=error,
        ))
        if instance_id is not None:
            await s.flush()
            enqueue(s, message, instance_id)  # same transaction: a reply is never stored unqueued
        if not note:
            await bind_attachments(s, conv.id or 0, message.attachments)
            conv.operator_read_seq = conv.last_seq
            conv.operator_read_public_seq = conv.last_public_seq
        await s.flush()
        s.publish(message_dispatches(message, conv))
        emit_message(s, message, conv)
        if not note:
            s.publish([receipt_dispatch(
                contact_audience(conv.contact_id), conv.id, "operator", "read", conv.operator_read_public_seq)])
        if instance_id is not None:
            s.on_commit(rt.outbound_queued.set)  # the worker sends it now, not at its next poll
    rt.metrics.messages_out.labels(picked.value, kind.value).inc()
    return Stored(message, conv)


async def _reply_channel(s: AsyncSession, conv: Conversation, requested: str | None) -> Channel:
    if requested is None:
        return Channel(conv.last_inbound_channel or Channel.widget)
    if requested not in {c.value for c in REPLY_CHANNELS}:
        raise ActionError("invalid_channel", f"cannot reply on {requested!r}")
    available = await contact_channels(s, conv.contact_id)
    if requested not in available:
        raise ActionError("channel_unavailable", f"this contact cannot be reached on {requested}")
    return Channel(requested)


async def do_append_system_line(
    s: AsyncSession, conv: Conversation, text: str, operator: Operator | None, event: str | None = None,
) -> Message:
    """Assigned, closed, merged ...: a line in the thread that only operators see. `event`
    names what happened for programs (reports), `text` tells people."""
    return append(s, conv, Message(
            conversation_id=conv.id or 0, seq=0,  # numbered by append()
        channel=Channel.internal, direction=Direction.internal, kind=Kind.system,
        author_type=AuthorType.operator if operator else AuthorType.system,
        author_id=operator.id if operator else None, author_name=operator.name if operator else None,
        text=text, delivery_state=DeliveryState.sent, system_event=event,
    ))


async def do_operator_read(rt: Runtime, operator: Operator, conversation_id: int, seq: int) -> None:
    """Operators have read the thread up to `seq` (shared by the team, like an inbox).
    Sales reps read too, but the shared unread state is the answering team's."""
    check_can_write(operator)
    async with rt.db.write() as s:
        conv = await locked_conversation(s, conversation_id)
        seq = min(seq, conv.last_seq)
        if seq <= conv.operator_read_seq:
            return
        public = (
            await s.exec(select(func.max(Message.public_seq)).where(
                Message.conversation_id == conv.id, Message.seq <= seq))
        ).one()
        conv.operator_read_seq = seq
        conv.operator_read_public_seq = public or 0
        s.add(conv)
        s.publish([
            receipt_dispatch(STAFF, conv.id, "operator", "read", seq),
            receipt_dispatch(contact_audience(conv.contact_id), conv.id, "operator", "read", conv.operator_read_public_seq),
        ])


_STATE_ORDER = {DeliveryState.sent: 0, DeliveryState.delivered: 1, DeliveryState.read: 2}


async def do_contact_receipt(rt: Runtime, contact_id: int, state: str, public_seq: int) -> None:
    """The widget showed (delivered) or the visitor read our messages up to `public_seq`."""
    reached = DeliveryState(state)
    lower = [s for s, rank in _STATE_ORDER.items() if rank < _STATE_ORDER[reached]]
    async with rt.db.write() as s:
        conv = await conversation_of(s, contact_id, lock=True)
        if conv is None:
            return
        public_seq = min(public_seq, conv.last_public_seq)
        if reached == DeliveryState.read:
            if public_seq <= conv.contact_read_public_seq:
                return
            conv.contact_read_public_seq = public_seq
            s.add(conv)
        result = await s.exec(
            update(Message)
            .where(
                col(Message.conversation_id) == conv.id, col(Message.public_seq) <= public_seq,
                col(Message.direction) == Direction.outbound, col(Message.channel) == Channel.widget,
                col(Message.delivery_state).in_(lower),
            )
            .values(delivery_state=reached, updated_at=utcnow())
        )
        if result.rowcount == 0 and reached != DeliveryState.read:
            return
        seq = (
            await s.exec(select(func.max(Message.seq)).where(
                Message.conversation_id == conv.id, col(Message.public_seq) <= public_seq))
        ).one() or 0
        s.publish([receipt_dispatch(STAFF, conv.id, "contact", state, seq)])
