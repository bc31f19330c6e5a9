"""Behaviour events from the widget, and the contact's system properties they keep current:
first and last UTM tags, language, browser and OS, timezone, screen, sessions, pages viewed,
last page and last seen."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import Contact, Conversation, Event, Kind, Message
from ..models.ids import MAX_ROW_ID
from ..models.types import utcnow
from ..runtime import Runtime
from .contacts import check_event
from .errors import ActionError

UTM_FIELDS = ("source", "medium", "campaign", "content", "term")
# Device facts the widget reports with session_started / page_viewed; copied to the card.
DEVICE_PROPERTIES = ("language", "browser", "os", "timezone", "screen")
PROACTIVE_EVENTS = (
    "triggered_message_delivered", "triggered_message_read", "triggered_message_clicked",
    "triggered_message_replied",
)


def utm_of(url: str | None, properties: dict[str, Any]) -> dict[str, str]:
    """UTM tags from the event's properties (utm_detected) or the page's query string."""
    found = {k: str(properties[k])[:200] for k in UTM_FIELDS if isinstance(properties.get(k), str) and properties[k]}
    if not found and url:
        query = parse_qs(urlsplit(url).query)
        found = {k: v[0][:200] for k in UTM_FIELDS if (v := query.get("utm_" + k)) and v[0]}
    return found


def _apply(contact: Contact, name: str, properties: dict[str, Any], url: str | None, sessions: int | None) -> None:
    props = dict(contact.properties)
    for key in DEVICE_PROPERTIES:
        value = properties.get(key)
        if isinstance(value, str) and value:
            props[key] = value[:200]
    if name == "page_viewed":
        props["pages_viewed"] = int(props.get("pages_viewed") or 0) + 1
        title = properties.get("title")
        props["last_page"] = {"url": url or "", "title": title[:500] if isinstance(title, str) else ""}
    if name in ("utm_detected", "page_viewed"):
        utm = utm_of(url, properties) if name == "utm_detected" or "utm_" in (url or "") else {}
        if utm:
            props["last_utm"] = utm
            if not contact.first_utm:
                contact.first_utm = utm
    if name == "session_started" and sessions is not None:
        contact.sessions = max(contact.sessions, sessions)
    contact.properties = props
    contact.last_seen_at = utcnow()


async def _check_proactive(s: AsyncSession, contact_id: int, name: str, properties: dict[str, Any]) -> bool:
    """Proactive reports name a message sent to this contact; each is counted once.
    False when this report was already recorded (another tab said it first)."""
    message_id = properties.get("message_id")
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise ActionError("invalid_properties", f"{name} needs an integer message_id")
    if not 0 < message_id <= MAX_ROW_ID:
        raise ActionError("message_not_found", "no proactive message with this id was sent to you")
    row = (await s.exec(
        select(Message, Conversation).join(Conversation, Conversation.id == Message.conversation_id)  # type: ignore[arg-type]
        .where(Message.id == message_id)
    )).first()
    if row is None or row[1].contact_id != contact_id or row[0].kind != Kind.automatic:
        raise ActionError("message_not_found", "no proactive message with this id was sent to you")
    earlier = (await s.exec(select(Event.properties).where(Event.contact_id == contact_id, Event.name == name))).all()
    return not any(p.get("message_id") == message_id for p in earlier)


async def do_record_event(
    rt: Runtime, contact_id: int, name: str, properties: dict[str, Any], url: str | None = None
) -> int | None:
    """Store one event and fold what it says into the contact card (through the batched
    writer, actions/tracking.py). Returns the event's id, or None for a proactive-message
    report that was already recorded."""
    check_event(name, properties, url)
    if name not in PROACTIVE_EVENTS:
        from .tracking import TrackItem, do_track

        return (await do_track(rt, [TrackItem(contact_id, name, properties, url)]))[0]
    from .membership import Touch
    from .scoring import Happened, react

    async with rt.db.write() as s:
        if not await _check_proactive(s, contact_id, name, properties):
            return None
        event = Event(contact_id=contact_id, name=name, properties=properties, url=url)
        s.add(event)
        await s.flush()
        contact = await s.get(Contact, contact_id)
        if contact is not None:
            _apply(contact, name, properties, url, None)
            s.add(contact)
            await s.flush()
        assert event.id is not None
        await react(s, rt, {contact_id: Touch(events={name}, fields={"last_seen_at"})}, event.occurred_at,
                    [Happened(contact_id, event.id, name, url, properties, event.occurred_at)])
    return event.id
