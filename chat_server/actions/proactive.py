"""Proactive messages: a bot or an operator writes to a contact first (the trigger engine
calls this) — in the widget as a chat message or a popup card (optionally a lead-capture
form), or by email, Telegram or VK through the durable outbound queue."""

from __future__ import annotations

from typing import Any, Literal

from sqlmodel import select

from ..models import AuthorType, Channel, Contact, DeliveryState, Direction, Kind, Message, Operator
from ..reads.conversation_list import list_summary
from ..runtime import Runtime
from .contacts import get_or_create_conversation
from .errors import ActionError
from .outbound import enqueue
from .proactive_channels import check_subject, prepare_channel_send
from .publish import conversation_dispatch, message_dispatches
from .thread import Stored, append
from .validation import check_storable, check_text
from .webhook_events import emit_message

DISPLAYS = ("chat", "card")
CHANNELS = ("widget", "email", "telegram", "vk")
FORM_FIELDS = ("email", "phone")


def check_form(form: dict[str, Any] | None, channel: str, display: str) -> dict[str, str] | None:
    """A lead-capture form: {"field": "email" | "phone", "button": "Send"}, in a widget card."""
    if form is None:
        return None
    if not isinstance(form, dict) or set(form) - {"field", "button"} or form.get("field") not in FORM_FIELDS:
        raise ActionError("invalid_form", 'a form is {"field": "email" | "phone", "button": "..."}')
    if channel != "widget" or display != "card":
        raise ActionError("invalid_form", "a form is shown in the widget's popup card (display 'card')")
    button = form.get("button") or "Send"
    if not isinstance(button, str) or not button.strip() or len(button) > 50:
        raise ActionError("invalid_form", "a form's button says something, in at most 50 characters")
    return {"field": form["field"], "button": check_storable(button.strip(), "button")}


async def do_send_proactive(
    rt: Runtime, contact_id: int, text: str, *, channel: Literal["widget", "email", "telegram", "vk"] = "widget",
    display: Literal["chat", "card"] = "chat", author_name: str = "Bot", author_operator_id: int | None = None,
    subject: str | None = None, form: dict[str, Any] | None = None, client_msg_id: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> Stored:
    """An `automatic` message to the contact. In the widget: a chat message that opens the
    conversation, or a popup card. The widget reports delivered / read / clicked / replied as
    `triggered_message_*` events; emails report read / clicked through their tracking links.
    `client_msg_id` makes a retry store nothing new. Raises `unreachable` when the contact has
    no such channel, unsubscribed from it, or blocked us there."""
    check_text(text)
    check_storable(author_name, "author_name")
    if channel not in CHANNELS:
        raise ActionError("invalid_channel", f"channel is one of {CHANNELS}")
    if display not in DISPLAYS:
        raise ValueError(f"display is one of {DISPLAYS}")
    checked_form = check_form(form, channel, display)
    checked_subject = check_subject(subject)
    async with rt.db.write() as s:
        author_type, author_id = AuthorType.bot, None
        if author_operator_id is not None:
            operator = await s.get(Operator, author_operator_id)
            if operator is None:
                raise ActionError("operator_not_found", "no operator with this id")
            author_type, author_id, author_name = AuthorType.operator, operator.id, operator.name
        conv, created = await get_or_create_conversation(s, contact_id)
        if client_msg_id is not None and not created:
            existing = (await s.exec(select(Message).where(
                Message.conversation_id == conv.id, Message.client_msg_id == client_msg_id))).first()
            if existing is not None:
                return Stored(existing, conv, duplicate=True)
        instance_id: int | None = None
        meta: dict[str, Any] = {}
        if channel != "widget":
            instance_id, meta = await prepare_channel_send(s, conv, channel, checked_subject)
        if checked_form is not None:
            meta["form"] = checked_form
        message = append(s, conv, Message(
            conversation_id=conv.id or 0, seq=0,  # numbered by append()
            channel=Channel(channel), direction=Direction.outbound, kind=Kind.automatic,
            author_type=author_type, author_id=author_id, author_name=author_name[:200], text=text,
            attachments=attachments or [], client_msg_id=client_msg_id,
            # The widget is delivered by our own sockets; other channels by the outbound queue.
            delivery_state=DeliveryState.sent if instance_id is None else DeliveryState.pending,
            display=display if channel == "widget" else None, channel_instance_id=instance_id, meta=meta,
        ))
        await s.flush()
        if instance_id is not None:
            enqueue(s, message, instance_id)  # same transaction: never stored unqueued
            s.on_commit(rt.outbound_queued.set)
        if created:
            contact = await s.get(Contact, contact_id)
            assert contact is not None
            # The inbox learns of the thread before its first line.
            s.publish([conversation_dispatch(conv, contact, await list_summary(s, conv))])
        s.publish(message_dispatches(message, conv))
        emit_message(s, message, conv)
    return Stored(message, conv)
