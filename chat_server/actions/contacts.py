"""Contacts: find-or-create by identity, the widget visitor's arrival, tracked events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import Contact, ContactIdentity, Conversation, Event, IdentityKind
from ..reads.contacts import find_contact as find_contact  # the actions find owners inside their writes
from ..runtime import Runtime
from .errors import NotFound
from .validation import check_properties, check_storable
from .webhook_events import emit_contact, emit_conversation_created

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
# last_seen is refreshed at most this often, so reconnects do not turn into write storms.
LAST_SEEN_RESOLUTION = timedelta(minutes=5)


async def get_contact(s: AsyncSession, contact_id: int) -> Contact:
    contact = await s.get(Contact, contact_id)
    if contact is None:
        raise NotFound("contact_not_found", "no such contact")
    return contact


async def find_or_create_contact(
    s: AsyncSession, kind: IdentityKind, value: str, reason: str, **fields: Any
) -> tuple[Contact, bool]:
    """The contact owning (kind, value), created with that identity if nobody owns it.

    Two writers may race on the same new identity (PostgreSQL): the unique key decides and the
    loser reads the winner's contact.
    """
    contact = await find_contact(s, kind, value)
    if contact is not None:
        return contact, False
    try:
        async with s.begin_nested():
            contact = Contact(**fields)
            s.add(contact)
            await s.flush()
            assert contact.id is not None
            s.add(ContactIdentity(kind=kind, value=value, contact_id=contact.id, linked_reason=reason))
            await s.flush()
        emit_contact(s, "contact.created", contact)
        return contact, True
    except IntegrityError:
        contact = await find_contact(s, kind, value)
        assert contact is not None
        return contact, False


async def conversation_of(s: AsyncSession, contact_id: int, lock: bool = False) -> Conversation | None:
    query = select(Conversation).where(Conversation.contact_id == contact_id)
    if lock:
        query = query.with_for_update()
    return (await s.exec(query)).first()


async def get_or_create_conversation(s: AsyncSession, contact_id: int) -> tuple[Conversation, bool]:
    """Exactly one conversation per contact, locked for this transaction."""
    conv = await conversation_of(s, contact_id, lock=True)
    if conv is not None:
        return conv, False
    try:
        async with s.begin_nested():
            conv = Conversation(contact_id=contact_id)
            s.add(conv)
            await s.flush()
        emit_conversation_created(s, conv)
        return conv, True
    except IntegrityError:
        conv = await conversation_of(s, contact_id, lock=True)
        assert conv is not None
        return conv, False


def first_touch(url: str, referrer: str) -> dict[str, Any]:
    """Where a new contact came from: landing page, referrer and UTM tags."""
    fields: dict[str, Any] = {}
    if url:
        fields["first_landing_page"] = check_storable(url, "url")
        query = parse_qs(urlsplit(url).query)
        utm = {k[4:]: v[0] for k, v in query.items() if k in UTM_KEYS and v and v[0]}
        if utm:
            fields["first_utm"] = {k: check_storable(v, "utm") for k, v in utm.items()}
    if referrer:
        fields["first_referrer"] = check_storable(referrer, "referrer")
    return fields


def check_event(name: str, properties: dict[str, Any], url: str | None) -> None:
    check_storable(name, "event name")
    check_properties(properties)
    if url is not None:
        check_storable(url, "url")


async def do_track_event(
    rt: Runtime, contact_id: int, name: str, properties: dict[str, Any], url: str | None = None
) -> Event:
    check_event(name, properties, url)
    async with rt.db.write() as s:
        event = Event(contact_id=contact_id, name=name, properties=properties, url=url)
        s.add(event)
        contact = await s.get(Contact, contact_id)
        if contact is not None:
            contact.last_seen_at = event.occurred_at
    return event


async def contact_channels(s: AsyncSession, contact_id: int) -> set[str]:
    """Channels an operator can reach this contact on, from the identities it has."""
    kinds = (await s.exec(select(ContactIdentity.kind).where(ContactIdentity.contact_id == contact_id))).all()
    channel_of = {"visitor": "widget", "telegram": "telegram", "vk": "vk", "email": "email"}
    return {channel_of[k] for k in kinds if k in channel_of}
