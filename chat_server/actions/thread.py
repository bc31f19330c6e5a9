"""A message's place in its conversation's thread, and what writing one produced."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import Conversation, Direction, Kind, Message


@dataclass
class Stored:
    message: Message
    conversation: Conversation
    duplicate: bool = False


def number(conv: Conversation, message: Message) -> Message:
    """Give the message the next place in the thread. The caller holds the conversation's lock
    (row lock on PostgreSQL, the single writer on SQLite), so numbers are gap-free."""
    assert conv.id is not None
    conv.last_seq += 1
    message.conversation_id = conv.id
    message.seq = conv.last_seq
    if message.kind in (Kind.text, Kind.automatic):
        conv.last_public_seq += 1
        message.public_seq = conv.last_public_seq
    if message.direction == Direction.inbound:
        conv.last_inbound_seq = message.seq
        conv.last_inbound_channel = message.channel
    conv.last_activity_at = message.created_at
    return message


def append(s: AsyncSession, conv: Conversation, message: Message) -> Message:
    """Number the message and add it (and its conversation's new numbers) to the session."""
    number(conv, message)
    s.add(message)
    s.add(conv)
    return message
