"""Turn table rows into the views the API and the sockets send."""

from __future__ import annotations

from typing import Literal, cast

from .events import (
    Author,
    ContactSummary,
    ConversationView,
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
    )


def contact_summary(c: Contact) -> ContactSummary:
    assert c.id is not None
    return ContactSummary(id=c.id, name=c.name, email=c.email, phone=c.phone)


def conversation_view(conv: Conversation, contact: Contact) -> ConversationView:
    assert conv.id is not None
    return ConversationView(
        id=conv.id, contact=contact_summary(contact), status=conv.status,
        snoozed_until=conv.snoozed_until, assignee_id=conv.assignee_id, tags=conv.tags,
        last_activity_at=conv.last_activity_at, last_seq=conv.last_seq,
        last_inbound_seq=conv.last_inbound_seq, operator_read_seq=conv.operator_read_seq,
        contact_read_seq=conv.contact_read_public_seq,
        last_inbound_channel=conv.last_inbound_channel,
        unread=conv.last_inbound_seq > conv.operator_read_seq, epoch=conv.epoch,
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
