"""Writing contacts' messages in batches: the hot path of a busy site.

Every message from a visitor, a Telegram or VK user or an emailer ends here. Messages that
arrive while a batch is being committed go together in the next one (see group_commit), and
a batch costs the same three statements as a single message: lock the conversations, insert
the messages, update the conversations. The rows are written with Core statements: the ORM's
unit of work costs more CPU than SQLite takes to store the row. They go through the session's
connection, so they share its transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import bindparam, insert, update
from sqlalchemy import inspect as sa_inspect
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import Database, WriteSession
from ..group_commit import GroupCommit
from ..metrics import Metrics
from ..models import AuthorType, Channel, Contact, Conversation, DeliveryState, Direction, Kind, Message, Status
from ..models.types import utcnow
from ..reads.conversation_list import EMPTY, list_summaries
from .attachments import bind_attachments
from .contacts import get_or_create_conversation
from .publish import conversation_dispatch, message_dispatches
from .thread import Stored, number
from .webhook_events import emit_message, emit_status_changed


@dataclass
class Inbound:
    """One message from a contact, checked and waiting to be written."""

    contact_id: int
    channel: Channel
    text: str
    client_msg_id: str | None
    external_id: str | None
    attachments: list[dict[str, Any]]
    author_name: str | None
    channel_instance_id: int | None
    meta: dict[str, Any]
    follow_merges: bool  # the sender may have been merged into another card since it was resolved


def contact_message_writes(db: Database, metrics: Metrics) -> GroupCommit[Inbound, Stored]:
    """The process's batch writer of contacts' messages (built once, in the app's lifespan)."""
    return GroupCommit(lambda batch: write_contact_messages(db, metrics, batch), workers=1 if db.is_sqlite else 4)


async def write_contact_messages(db: Database, metrics: Metrics, batch: list[Inbound]) -> list[Stored]:
    """Store a batch of contacts' messages in one transaction; its news goes out in one
    publication once the batch has committed."""
    stored = await db.write_batch(lambda s: _store(s, batch))
    for one in stored:
        metrics.messages_in.labels(one.message.channel.value).inc()
    return stored


async def _store(s: WriteSession, batch: list[Inbound]) -> list[Stored]:
    for item in batch:
        if item.follow_merges:
            item.contact_id = await survivor_of(s, item.contact_id)
    convs, created = await _lock_conversations(s, {item.contact_id for item in batch})
    reopened: set[int] = set()
    messages = []
    for item in batch:
        conv = convs[item.contact_id]
        if conv.status != Status.open:
            emit_status_changed(s, conv, conv.status, None)
            conv.status, conv.snoozed_until = Status.open, None
            reopened.add(item.contact_id)
        messages.append(number(conv, _message(item, conv)))
    await _insert(s, messages)
    await _update(s, list(convs.values()))
    for message in messages:
        if message.attachments:
            await bind_attachments(s, message.conversation_id, message.attachments)
    contacts = await _contacts(s, created | reopened)
    summaries = await list_summaries(s, [convs[c].id or 0 for c in contacts])
    stored = [Stored(message, convs[item.contact_id]) for item, message in zip(batch, messages, strict=True)]
    for one in stored:
        contact = contacts.pop(one.conversation.contact_id, None)  # news of the conversation once, before its first message
        if contact is not None:
            summary = summaries.get(one.conversation.id or 0, EMPTY)
            s.publish([conversation_dispatch(one.conversation, contact, summary)])
        s.publish(message_dispatches(one.message, one.conversation))
        emit_message(s, one.message, one.conversation)
    return stored


async def survivor_of(s: AsyncSession, contact_id: int) -> int:
    """The contact that absorbed this one, if a merge got there first (a channel message
    resolved its sender just before the sender was merged into another card)."""
    for _ in range(10):
        merged_into = (await s.exec(select(Contact.merged_into_id).where(Contact.id == contact_id))).first()
        if merged_into is None:
            return contact_id
        contact_id = merged_into
    return contact_id


def _message(item: Inbound, conv: Conversation) -> Message:
    now = utcnow()
    return _build(Message, {
        "id": None, "conversation_id": conv.id or 0, "seq": 0, "public_seq": None,  # numbered by number()
        "channel": item.channel, "direction": Direction.inbound, "kind": Kind.text,
        "author_type": AuthorType.contact, "author_id": item.contact_id, "author_name": item.author_name,
        "text": item.text, "attachments": item.attachments, "client_msg_id": item.client_msg_id,
        "external_id": item.external_id, "delivery_state": DeliveryState.delivered, "delivery_error": None,
        "channel_instance_id": item.channel_instance_id, "meta": item.meta, "system_event": None, "display": None,
        "created_at": now, "updated_at": now,
    })


M = TypeVar("M", Message, Conversation)


def _build(model: type[M], values: Mapping[str, Any]) -> M:
    """A model object made the way SQLAlchemy makes one for a row it loads: no per-field
    validation and change tracking. The constructor's setattr path costs ~150 µs for a
    message, more than storing it. The values are complete and already valid."""
    obj: M = sa_inspect(model).class_manager.new_instance()
    obj.__dict__.update(values)
    return obj


_conversations = Conversation.__table__  # type: ignore[attr-defined]
_messages = Message.__table__  # type: ignore[attr-defined]
_MESSAGE_COLUMNS = [c.name for c in _messages.columns if c.name != "id"]


async def _lock_conversations(s: AsyncSession, contact_ids: set[int]) -> tuple[dict[int, Conversation], set[int]]:
    """The contacts' conversations, locked in id order (two batches never wait on each other
    in a circle); a contact's first message creates theirs. Returned detached from the
    session: their new numbers are written by _update, not by the ORM."""
    db = await s.connection()
    rows = (await db.execute(
        select(_conversations).where(_conversations.c.contact_id.in_(contact_ids))
        .order_by(_conversations.c.id).with_for_update()
    )).all()
    convs = {row.contact_id: _build(Conversation, row._mapping) for row in rows}
    created = set()
    for contact_id in sorted(contact_ids - convs.keys()):
        conv, is_new = await get_or_create_conversation(s, contact_id)
        s.expunge(conv)
        convs[contact_id] = conv
        if is_new:
            created.add(contact_id)
    return convs, created


async def _insert(s: AsyncSession, messages: list[Message]) -> None:
    """One multi-row INSERT. Rows come back in no promised order (SQLite says so), and asking
    SQLAlchemy for the order makes it insert row by row; (conversation, seq) is unique, so the
    ids are matched by it."""
    rows = [{name: getattr(m, name) for name in _MESSAGE_COLUMNS} for m in messages]
    db = await s.connection()
    result = await db.execute(insert(_messages).returning(_messages.c.id, _messages.c.conversation_id, _messages.c.seq), rows)
    ids = {(conversation_id, seq): message_id for message_id, conversation_id, seq in result}
    for message in messages:
        message.id = ids[message.conversation_id, message.seq]


_SET = ("status", "snoozed_until", "last_seq", "last_public_seq", "last_inbound_seq", "last_inbound_channel",
        "last_activity_at")
_UPDATE = update(_conversations).where(_conversations.c.id == bindparam("conv_id")).values(
    {name: bindparam(f"new_{name}", type_=_conversations.c[name].type) for name in _SET}
)


async def _update(s: AsyncSession, convs: list[Conversation]) -> None:
    db = await s.connection()
    await db.execute(_UPDATE, [{"conv_id": c.id, **{f"new_{name}": getattr(c, name) for name in _SET}} for c in convs])


async def _contacts(s: AsyncSession, contact_ids: set[int]) -> dict[int, Contact]:
    if not contact_ids:
        return {}
    found = (await s.exec(select(Contact).where(col(Contact.id).in_(contact_ids)))).all()
    return {c.id: c for c in found if c.id is not None}
