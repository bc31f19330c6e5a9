"""Contacts: by identity, the contacts table (search, filters, export), the card, and the
automatic messages a contact got."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ..behaviour.filter_sql import contact_filter_clause
from ..behaviour.filters import ContactFilter
from ..behaviour.segments import Group, segment_clause
from ..behaviour.text import contains
from ..db import Database
from ..models import Contact, ContactIdentity, ContactMerge, Conversation, Direction, Event, IdentityKind, Kind, Message
from ..models.types import utcnow

# How far the card's event list and the proactive list go back.
CARD_EVENTS = 200
PROACTIVE_MESSAGES = 100


async def find_contact(s: AsyncSession, kind: IdentityKind, value: str) -> Contact | None:
    """The contact owning the identity (kind, value)."""
    return (
        await s.exec(
            select(Contact)
            .join(ContactIdentity, ContactIdentity.contact_id == Contact.id)  # type: ignore[arg-type]
            .where(ContactIdentity.kind == kind, ContactIdentity.value == value)
        )
    ).first()


async def contact_id_by_identity(db: Database, kind: IdentityKind, value: str) -> int | None:
    async with db.read() as s:
        contact = await find_contact(s, kind, value)
    return contact.id if contact is not None else None


async def survivor(s: AsyncSession, contact_id: int) -> Contact | None:
    """The contact, or the one it was merged into: an absorbed card's links keep working."""
    contact = await s.get(Contact, contact_id)
    if contact is not None and contact.merged_into_id is not None:
        contact = await s.get(Contact, contact.merged_into_id)
    return contact


def _named(q: str) -> list[ColumnElement[bool]]:
    return [contains(col(f), q) for f in (Contact.name, Contact.email, Contact.phone)]


def _living(q: str | None) -> SelectOfScalar[Contact]:
    query = select(Contact).where(col(Contact.merged_into_id).is_(None))
    if q:
        query = query.where(or_(*_named(q)))
    return query


async def page(db: Database, q: str | None, before_id: int | None, limit: int) -> list[Contact]:
    """Contacts newest first, `limit + 1` of them so the caller sees whether more follow."""
    query = _living(q)
    if before_id is not None:
        query = query.where(col(Contact.id) < before_id)
    async with db.read() as s:
        return list((await s.exec(query.order_by(col(Contact.id).desc()).limit(limit + 1))).all())


def _matching(db: Database, flt: ContactFilter, q: str | None, segment: Group | None) -> SelectOfScalar[Contact]:
    dialect, now = db.read_engine.dialect.name, utcnow()
    query = _living(q).where(contact_filter_clause(flt, dialect, now))
    if segment is not None:
        # The segment's own definition, as its count and the live check use it.
        query = query.where(segment_clause(segment, dialect, now))
    return query


async def search(db: Database, flt: ContactFilter, q: str | None, before_id: int | None, limit: int,
                 segment: Group | None = None) -> list[Contact]:
    """Contacts matching the filter (and the segment's definition), newest first, `limit + 1` of them."""
    query = _matching(db, flt, q, segment)
    if before_id is not None:
        query = query.where(col(Contact.id) < before_id)
    async with db.read() as s:
        return list((await s.exec(query.order_by(col(Contact.id).desc()).limit(limit + 1))).all())


async def export(db: Database, flt: ContactFilter, q: str | None, at_most: int,
                 segment: Group | None = None) -> list[Contact]:
    """Contacts matching the filter (and the segment's definition), oldest first, at most `at_most + 1` of them."""
    async with db.read() as s:
        return list((await s.exec(_matching(db, flt, q, segment).order_by(col(Contact.id)).limit(at_most + 1))).all())


@dataclass
class Card:
    contact: Contact
    identities: Sequence[ContactIdentity]
    conversation: Conversation | None
    events: Sequence[Event]
    merges: Sequence[ContactMerge]


async def card(db: Database, contact_id: int) -> Card | None:
    async with db.read() as s:
        contact = await survivor(s, contact_id)
        if contact is None:
            return None
        return Card(
            contact=contact,
            identities=(await s.exec(select(ContactIdentity).where(ContactIdentity.contact_id == contact.id))).all(),
            conversation=(await s.exec(select(Conversation).where(Conversation.contact_id == contact.id))).first(),
            events=(await s.exec(select(Event).where(Event.contact_id == contact.id)
                                 .order_by(col(Event.occurred_at).desc()).limit(CARD_EVENTS))).all(),
            merges=(await s.exec(select(ContactMerge).where(ContactMerge.survivor_id == contact.id)
                                 .order_by(col(ContactMerge.id)))).all(),
        )


@dataclass
class Proactive:
    message: Message
    replied_at: datetime | None
    reply_text: str | None


async def proactive(db: Database, contact_id: int) -> list[Proactive] | None:
    """The automatic messages the contact got, each with the contact's first message after
    it (what followed), in one query whatever their number. None: no such contact."""
    reply = aliased(Message)
    first_reply_seq = (
        select(func.min(reply.seq))
        .where(reply.conversation_id == Message.conversation_id, reply.seq > Message.seq,
               reply.direction == Direction.inbound)
        .scalar_subquery()
    )
    answer = aliased(Message)
    async with db.read() as s:
        contact = await survivor(s, contact_id)
        if contact is None:
            return None
        rows = (await s.exec(
            select(Message, answer.created_at, answer.text)
            .join(Conversation, Conversation.id == Message.conversation_id)  # type: ignore[arg-type]
            .outerjoin(answer, and_(col(answer.conversation_id) == Message.conversation_id,
                                    col(answer.seq) == first_reply_seq))
            .where(Conversation.contact_id == contact.id, Message.kind == Kind.automatic)
            .order_by(col(Message.seq)).limit(PROACTIVE_MESSAGES)
        )).all()
    return [Proactive(m, replied_at, reply_text) for m, replied_at, reply_text in rows]
