"""What each webhook event says, and the one-line calls the actions make to emit them inside
their transaction. docs/webhooks.md shows every event's `data`; keep the two together.

Every event about a person carries the order key `contact:<id>`, so an endpoint receives one
contact's events (and their conversation's, which is theirs alone) in the order they were
written."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import EventData, WriteSession
from ..models import Contact, Conversation, Message


def emit(s: AsyncSession, event_type: str, data: EventData, contact_id: int | None = None) -> None:
    """Queue `event_type` for every endpoint that wants it, in `s`'s transaction."""
    if isinstance(s, WriteSession):
        s.emit(event_type, data, f"contact:{contact_id}" if contact_id is not None else "")


def emit_trigger_fired(s: AsyncSession, trigger_id: int, trigger_name: str, contact_id: int | None,
                       details: dict[str, Any] | None = None) -> None:
    """For the trigger engine: call inside the transaction that records a trigger's firing."""
    emit(s, "trigger.fired", {"trigger": {"id": trigger_id, "name": trigger_name}, "contact_id": contact_id,
                              **(details or {})}, contact_id)


def message_data(m: Message, conv: Conversation) -> dict[str, Any]:
    return {"message": {
        "id": m.id, "conversation_id": m.conversation_id, "contact_id": conv.contact_id, "seq": m.seq,
        "channel": m.channel, "direction": m.direction, "kind": m.kind, "author_type": m.author_type,
        "author_id": m.author_id, "author_name": m.author_name, "text": m.text,
        "attachments": [{k: a.get(k) for k in ("id", "name", "content_type", "size")} for a in m.attachments],
        "created_at": m.created_at,
    }}


def conversation_data(conv: Conversation) -> dict[str, Any]:
    return {"conversation": {
        "id": conv.id, "contact_id": conv.contact_id, "status": conv.status, "assignee_id": conv.assignee_id,
        "tags": list(conv.tags), "created_at": conv.created_at,
    }}


def contact_data(c: Contact) -> dict[str, Any]:
    return {"contact": {
        "id": c.id, "name": c.name, "email": c.email, "phone": c.phone, "properties": dict(c.properties),
        "score": c.score, "grade": c.grade, "first_seen_at": c.first_seen_at, "last_seen_at": c.last_seen_at,
    }}


def emit_message(s: AsyncSession, m: Message, conv: Conversation) -> None:
    emit(s, "message.created", lambda: message_data(m, conv), conv.contact_id)


def emit_conversation_created(s: AsyncSession, conv: Conversation) -> None:
    emit(s, "conversation.created", lambda: conversation_data(conv), conv.contact_id)


def emit_status_changed(s: AsyncSession, conv: Conversation, previous: str, actor_id: int | None) -> None:
    emit(s, "conversation.status_changed",
         lambda: {**conversation_data(conv), "previous_status": previous, "changed_by": actor_id}, conv.contact_id)


def emit_contact(s: AsyncSession, event_type: str, c: Contact, changed: list[str] | None = None) -> None:
    def data() -> dict[str, Any]:
        return {**contact_data(c), **({"changed": sorted(changed)} if changed is not None else {})}

    emit(s, event_type, data, c.id)


def emit_membership(s: AsyncSession, contact_id: int, segment_id: int, segment_name: str, entered: bool) -> None:
    emit(s, "segment.entered" if entered else "segment.left",
         {"contact_id": contact_id, "segment": {"id": segment_id, "name": segment_name}}, contact_id)


def emit_contact_created_row(s: AsyncSession, contact_id: int, row: dict[str, Any]) -> None:
    """A contact written by a Core insert (the widget's batched arrivals): its row's values."""
    emit(s, "contact.created", lambda: contact_data(Contact(id=contact_id, **row)), contact_id)
