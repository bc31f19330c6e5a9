"""Turn table rows into the views the API and the sockets send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from pydantic_core import to_json

from .frames import (
    Author,
    ContactSummary,
    ConversationView,
    LeadForm,
    MessagePreview,
    MessageView,
    OperatorView,
    VisitorConversationView,
    VisitorMessageView,
)
from .models import Contact, Conversation, Direction, Kind, Message, Operator


def author(message: Message) -> Author:
    return Author(type=message.author_type, id=message.author_id, name=message.author_name)


def message_view(m: Message) -> MessageView:
    assert m.id is not None
    return MessageView(
        id=m.id, conversation_id=m.conversation_id, seq=m.seq, public_seq=m.public_seq,
        channel=m.channel, direction=m.direction, kind=m.kind, author=author(m), text=m.text,
        attachments=m.attachments, client_msg_id=m.client_msg_id, delivery_state=m.delivery_state,
        delivery_error=m.delivery_error, created_at=m.created_at, updated_at=m.updated_at,
        display=cast(Literal["chat", "card"] | None, m.display),
    )


def is_public(m: Message) -> bool:
    return m.public_seq is not None


def visitor_message_view(m: Message) -> VisitorMessageView:
    assert m.id is not None and m.public_seq is not None
    shown_author = author(m)
    if m.author_type == "operator":
        shown_author = Author(type="operator", name=m.author_name)  # no internal ids
    return VisitorMessageView(
        id=m.id, seq=m.public_seq, channel=m.channel,
        direction=cast(Literal["inbound", "outbound"], m.direction),
        kind=cast(Literal["text", "automatic"], m.kind), author=shown_author, text=m.text,
        attachments=m.attachments,
        client_msg_id=m.client_msg_id if m.direction == Direction.inbound else None,
        delivery_state=m.delivery_state, created_at=m.created_at,
        display=cast(Literal["chat", "card"] | None, m.display),
        form=LeadForm.model_validate(form) if (form := _form(m)) else None,
    )


def message_frames(m: Message, frame_type: str = "message") -> tuple[str, str | None]:
    """The operators' frame and, for a public message, the contact's, as JSON text."""
    staff = staff_message_frame(m, frame_type)
    return staff, None if m.public_seq is None else visitor_message_frame(m, frame_type)


# Every message goes out to every staff socket and its contact, so its frames are built once and
# cheaply: serialised straight from a row we wrote or read ourselves, without validating it into
# the view models first. The text is exactly what MessageFrame(message=message_view(m)) and
# MessageFrame(message=visitor_message_view(m)) give; tests/test_message_frames.py pins that.


def staff_message_frame(m: Message, frame_type: str = "message") -> str:
    assert m.id is not None
    return to_json({
        "type": frame_type,
        "message": {
            "id": m.id, "conversation_id": m.conversation_id, "seq": m.seq, "public_seq": m.public_seq,
            "channel": m.channel, "direction": m.direction, "kind": m.kind,
            "author": {"type": m.author_type, "id": m.author_id, "name": m.author_name},
            "text": m.text, "attachments": m.attachments, "client_msg_id": m.client_msg_id,
            "delivery_state": m.delivery_state, "delivery_error": m.delivery_error, "created_at": m.created_at,
            "updated_at": m.updated_at, "display": m.display,
        },
    }).decode()


def _form(m: Message) -> dict[str, Any] | None:
    """A proactive card's lead-capture form (actions/proactive.py checked it when storing)."""
    form = m.meta.get("form") if m.kind == Kind.automatic else None
    return form if isinstance(form, dict) else None


def visitor_message_frame(m: Message, frame_type: str = "message") -> str:
    assert m.id is not None and m.public_seq is not None
    author_type, direction = m.author_type, m.direction
    shown: dict[str, Any] = {"type": author_type, "id": m.author_id, "name": m.author_name}
    if author_type == "operator":
        shown["id"] = None  # no internal ids
    return to_json({
        "type": frame_type,
        "message": {
            "id": m.id, "seq": m.public_seq, "channel": m.channel, "direction": direction, "kind": m.kind,
            "author": shown, "text": m.text, "attachments": m.attachments,
            "client_msg_id": m.client_msg_id if direction == Direction.inbound else None,
            "delivery_state": m.delivery_state, "created_at": m.created_at, "display": m.display,
            "form": _form(m),
        },
    }).decode()


def contact_summary(c: Contact) -> ContactSummary:
    assert c.id is not None
    return ContactSummary(id=c.id, name=c.name, email=c.email, phone=c.phone)


@dataclass(frozen=True)
class ListSummary:
    """What the inbox list needs beyond the conversation row (read by reads/conversation_list.py)."""

    unread_count: int = 0
    last_message: MessagePreview | None = None
    waiting_since: datetime | None = None


def conversation_view(conv: Conversation, contact: Contact, summary: ListSummary) -> ConversationView:
    assert conv.id is not None
    return ConversationView(
        id=conv.id, contact=contact_summary(contact), status=conv.status,
        snoozed_until=conv.snoozed_until, assignee_id=conv.assignee_id, tags=conv.tags,
        last_activity_at=conv.last_activity_at, last_seq=conv.last_seq,
        last_inbound_seq=conv.last_inbound_seq, operator_read_seq=conv.operator_read_seq,
        contact_read_seq=conv.contact_read_public_seq,
        last_inbound_channel=conv.last_inbound_channel,
        unread=conv.last_inbound_seq > conv.operator_read_seq, epoch=conv.epoch,
        unread_count=summary.unread_count, last_message=summary.last_message, waiting_since=summary.waiting_since,
    )


def visitor_conversation_view(conv: Conversation | None) -> VisitorConversationView:
    if conv is None:
        return VisitorConversationView(id=None, last_seq=0, operator_read_seq=0, contact_read_seq=0, epoch=1)
    return VisitorConversationView(
        id=conv.id, last_seq=conv.last_public_seq, operator_read_seq=conv.operator_read_public_seq,
        contact_read_seq=conv.contact_read_public_seq, epoch=conv.epoch,
    )


def operator_view(op: Operator) -> OperatorView:
    assert op.id is not None
    return OperatorView(
        id=op.id, name=op.name, email=op.email, role=op.role, availability=op.availability,
        is_active=op.is_active,
    )


VISIBLE_KINDS = (Kind.text, Kind.automatic)
