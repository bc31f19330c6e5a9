"""Who hears about what. Each helper computes the audience of one kind of news explicitly."""

from __future__ import annotations

from ..bus import Audience, Dispatch, DispatchKind
from ..frames import ConversationUpdatedFrame, ReceiptFrame
from ..models import Contact, Conversation, Message, Role
from ..views import ListSummary, conversation_view, message_frames

# Every active staff member reads every conversation (sales read-only); visitors are never staff.
STAFF = Audience(roles=(Role.admin.value, Role.operator.value, Role.sales.value))


def contact_audience(contact_id: int) -> Audience:
    return Audience(contact_ids=(contact_id,))


def message_dispatches(m: Message, conv: Conversation, updated: bool = False) -> list[Dispatch]:
    """Operators get every message; the contact only public ones, in their own numbering.
    `updated` re-sends a message whose state changed (no new place in the stream)."""
    staff, visitor = message_frames(m, "message.updated" if updated else "message")
    kind = DispatchKind.message_updated if updated else DispatchKind.message
    dispatches = [Dispatch(kind, STAFF, staff, conv.id, None if updated else m.seq, conv.epoch)]
    if visitor is not None:
        dispatches.append(Dispatch(
            kind, contact_audience(conv.contact_id), visitor, conv.id, None if updated else m.public_seq, conv.epoch))
    return dispatches


def conversation_dispatch(conv: Conversation, contact: Contact, summary: ListSummary) -> Dispatch:
    """`summary` is read in the writing transaction (reads.conversation_list.list_summary), so
    the view describes the conversation up to its `last_seq`."""
    frame = ConversationUpdatedFrame(conversation=conversation_view(conv, contact, summary))
    return Dispatch(DispatchKind.conversation, STAFF, frame.model_dump_json())


def receipt_dispatch(audience: Audience, conversation_id: int | None, reader: str, state: str, seq: int) -> Dispatch:
    frame = ReceiptFrame.model_validate(
        {"conversation_id": conversation_id, "reader": reader, "state": state, "seq": seq})
    return Dispatch(DispatchKind.receipt, audience, frame.model_dump_json())
