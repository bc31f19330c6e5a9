"""Conversations: the inbox list (filters, search, cursor), one conversation with its contact,
and the lookups the sockets make."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import TextClause, and_, exists, or_, text
from sqlmodel import col, select

from ..behaviour.text import contains
from ..db import Database
from ..models import Contact, Conversation, Message


@dataclass(frozen=True)
class ConversationFilter:
    status: str | None = None
    # An operator's id, or "none" for conversations nobody is assigned to.
    assignee: int | Literal["none"] | None = None
    channel: str | None = None
    tag: str | None = None
    # Message text, contact name, email or phone.
    q: str | None = None
    unread: bool | None = None
    # Only conversations after this (last activity, id) in the list's order.
    after: tuple[datetime, int] | None = None


def _has_tag(dialect: str, tag: str) -> TextClause:
    if dialect == "postgresql":
        return text("conversation.tags @> CAST(:tag_json AS jsonb)").bindparams(tag_json=json.dumps([tag]))
    return text("EXISTS (SELECT 1 FROM json_each(conversation.tags) WHERE json_each.value = :tag)").bindparams(tag=tag)


async def page(db: Database, f: ConversationFilter, limit: int) -> Sequence[tuple[Conversation, Contact]]:
    """By last activity, newest first, `limit + 1` of them so the caller sees whether more follow."""
    query = select(Conversation, Contact).join(Contact, Contact.id == Conversation.contact_id)  # type: ignore[arg-type]
    if f.status:
        query = query.where(Conversation.status == f.status)
    if f.assignee == "none":
        query = query.where(col(Conversation.assignee_id).is_(None))
    elif f.assignee is not None:
        query = query.where(Conversation.assignee_id == f.assignee)
    if f.channel:
        query = query.where(exists().where(col(Message.conversation_id) == Conversation.id,
                                           col(Message.channel) == f.channel))
    if f.tag:
        query = query.where(_has_tag(db.write_engine.dialect.name, f.tag))
    if f.q:
        query = query.where(or_(
            *(contains(col(field), f.q) for field in (Contact.name, Contact.email, Contact.phone)),
            exists().where(col(Message.conversation_id) == Conversation.id, contains(col(Message.text), f.q)),
        ))
    if f.unread is True:
        query = query.where(col(Conversation.last_inbound_seq) > col(Conversation.operator_read_seq))
    elif f.unread is False:
        query = query.where(col(Conversation.last_inbound_seq) <= col(Conversation.operator_read_seq))
    if f.after:
        at, ident = f.after
        query = query.where(or_(col(Conversation.last_activity_at) < at,
                                and_(col(Conversation.last_activity_at) == at, col(Conversation.id) < ident)))
    query = query.order_by(col(Conversation.last_activity_at).desc(), col(Conversation.id).desc()).limit(limit + 1)
    async with db.read() as s:
        return (await s.exec(query)).all()


async def with_contact(db: Database, conversation_id: int) -> tuple[Conversation, Contact] | None:
    async with db.read() as s:
        conv = await s.get(Conversation, conversation_id)
        contact = await s.get(Contact, conv.contact_id) if conv is not None else None
    return (conv, contact) if conv is not None and contact is not None else None


async def contact_of(db: Database, conv: Conversation) -> Contact | None:
    async with db.read() as s:
        return await s.get(Contact, conv.contact_id)


async def contact_id_of(db: Database, conversation_id: int) -> int | None:
    async with db.read() as s:
        conv = await s.get(Conversation, conversation_id)
    return conv.contact_id if conv is not None else None


async def of_contact(db: Database, contact_id: int) -> Conversation | None:
    """The contact's one conversation, if it started."""
    async with db.read() as s:
        return (await s.exec(select(Conversation).where(Conversation.contact_id == contact_id))).first()


async def by_ids(db: Database, ids: Sequence[int]) -> Sequence[Conversation]:
    if not ids:
        return []
    async with db.read() as s:
        return (await s.exec(select(Conversation).where(col(Conversation.id).in_(list(ids))))).all()
