"""Proactive messages: a bot writes to a visitor first (the trigger engine calls this)."""

from __future__ import annotations

from typing import Any, Literal

from sqlmodel import select

from ..models import AuthorType, Channel, Contact, DeliveryState, Direction, Kind, Message
from ..reads.conversation_list import list_summary
from ..runtime import Runtime
from .contacts import get_or_create_conversation
from .publish import conversation_dispatch, message_dispatches
from .thread import Stored, append
from .validation import check_storable, check_text
from .webhook_events import emit_message

DISPLAYS = ("chat", "card")


async def do_send_proactive(
    rt: Runtime, contact_id: int, text: str, *, display: Literal["chat", "card"] = "chat",
    author_name: str = "Bot", client_msg_id: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
) -> Stored:
    """An `automatic` message from a bot to the contact's widget: shown as a chat message that
    opens the conversation, or as a popup card. `client_msg_id` makes a retry store nothing new.
    The widget reports delivered / read / clicked / replied as `triggered_message_*` events."""
    check_text(text)
    check_storable(author_name, "author_name")
    if display not in DISPLAYS:
        raise ValueError(f"display is one of {DISPLAYS}")
    async with rt.db.write() as s:
        conv, created = await get_or_create_conversation(s, contact_id)
        if client_msg_id is not None and not created:
            existing = (await s.exec(select(Message).where(
                Message.conversation_id == conv.id, Message.client_msg_id == client_msg_id))).first()
            if existing is not None:
                return Stored(existing, conv, duplicate=True)
        message = append(s, conv, Message(
            conversation_id=conv.id or 0, seq=0,  # numbered by append()
            channel=Channel.widget, direction=Direction.outbound, kind=Kind.automatic,
            author_type=AuthorType.bot, author_name=author_name[:200], text=text,
            attachments=attachments or [], client_msg_id=client_msg_id,
            delivery_state=DeliveryState.sent, display=display,
        ))
        await s.flush()
        if created:
            contact = await s.get(Contact, contact_id)
            assert contact is not None
            # The inbox learns of the thread before its first line.
            s.publish([conversation_dispatch(conv, contact, await list_summary(s, conv))])
        s.publish(message_dispatches(message, conv))
        emit_message(s, message, conv)
    return Stored(message, conv)
