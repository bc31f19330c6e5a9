"""What the inbox list shows of each conversation besides the row itself: a preview of the
last message, how many inbound messages are unread, and since when the contact has waited for
an answer.

One statement for any number of conversations: each value is a correlated subquery that
walks the `(conversation_id, seq)` unique index from its end, so a long thread costs no more
than a short one for the preview, and the counts touch only the unread / unanswered tail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, case, func
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import Database
from ..frames import PREVIEW_LENGTH, Author, ConversationView, MessagePreview
from ..models import AuthorType, Contact, Conversation, Direction, Kind, Message, Status
from ..views import ListSummary, conversation_view

CHUNK = 500  # ids per IN (…): well inside every database's parameter limit
# Enough of the text to find its first line without carrying a whole email across.
_FETCHED = 4 * PREVIEW_LENGTH


EMPTY = ListSummary()


def preview_text(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= PREVIEW_LENGTH else first[: PREVIEW_LENGTH - 1].rstrip() + "…"


def _statement(ids: list[int]) -> Select[Any]:
    last = aliased(Message)
    answer = aliased(Message)
    inbound = aliased(Message)
    last_id = (
        select(last.id).where(last.conversation_id == Conversation.id, last.kind != Kind.system)
        .order_by(col(last.seq).desc()).limit(1).correlate(Conversation).scalar_subquery()
    )
    unread = (
        select(func.count()).select_from(inbound)
        .where(inbound.conversation_id == Conversation.id, inbound.direction == Direction.inbound,
               col(inbound.seq) > Conversation.operator_read_seq)
        .correlate(Conversation).scalar_subquery()
    )
    # Only an operator's reply answers: notes, system lines and bots' messages do not.
    answered_seq = (
        select(answer.seq).where(answer.conversation_id == Conversation.id, answer.direction == Direction.outbound,
                                 answer.author_type == AuthorType.operator, answer.kind == Kind.text)
        .order_by(col(answer.seq).desc()).limit(1).correlate(Conversation).scalar_subquery()
    )
    waiting = (
        select(func.min(inbound.created_at)).select_from(inbound)
        .where(inbound.conversation_id == Conversation.id, inbound.direction == Direction.inbound,
               col(inbound.seq) > func.coalesce(answered_seq, 0))
        .correlate(Conversation).scalar_subquery()
    )
    return (
        core_select(col(Conversation.id), unread, waiting, col(Message.seq), func.substr(col(Message.text), 1, _FETCHED),
               col(Message.kind), col(Message.direction), col(Message.author_type), col(Message.author_id),
               col(Message.author_name), col(Message.created_at), col(Message.attachments))
        .select_from(Conversation)
        .outerjoin(Message, col(Message.id) == last_id)
        .where(col(Conversation.id).in_(ids))
    )


async def list_summaries(s: AsyncSession, conversation_ids: Iterable[int]) -> dict[int, ListSummary]:
    """Each conversation's summary, in one statement per CHUNK conversations."""
    ids = sorted(set(conversation_ids))
    found: dict[int, ListSummary] = {}
    for start in range(0, len(ids), CHUNK):
        conn = await s.connection()
        rows = (await conn.execute(_statement(ids[start:start + CHUNK]))).all()
        for (conv_id, unread, waiting, seq, text, kind, direction, author_type, author_id, author_name,
             created_at, attachments) in rows:
            preview = None if seq is None else MessagePreview(
                seq=seq, text=preview_text(text or ""), kind=kind, direction=direction,
                author=Author(type=author_type, id=author_id, name=author_name), created_at=created_at,
                attachments=len(attachments or []),
            )
            found[conv_id] = ListSummary(unread_count=unread or 0, last_message=preview, waiting_since=waiting)
    return found


async def list_summary(s: AsyncSession, conversation: Conversation) -> ListSummary:
    assert conversation.id is not None
    return (await list_summaries(s, [conversation.id])).get(conversation.id, EMPTY)


async def conversation_views(s: AsyncSession, rows: Sequence[tuple[Conversation, Contact]]) -> list[ConversationView]:
    """Views of a page of conversations: one statement for the page's summaries."""
    summaries = await list_summaries(s, [conv.id for conv, _ in rows if conv.id is not None])
    return [conversation_view(conv, contact, summaries.get(conv.id or 0, EMPTY)) for conv, contact in rows]


async def one_conversation_view(s: AsyncSession, conv: Conversation, contact: Contact) -> ConversationView:
    return (await conversation_views(s, [(conv, contact)]))[0]


async def unread_per_tab(s: AsyncSession, operator_id: int) -> dict[str, int]:
    """Open conversations with unread messages: all, assigned to this operator, unassigned."""
    unread = col(Conversation.last_inbound_seq) > col(Conversation.operator_read_seq)
    row = (await s.exec(
        select(func.count(),
               func.count(case((col(Conversation.assignee_id) == operator_id, 1))),
               func.count(case((col(Conversation.assignee_id).is_(None), 1))))
        .select_from(Conversation).where(Conversation.status == Status.open, unread)
    )).one()
    return {"open": row[0], "mine": row[1], "unassigned": row[2]}


# The same, for a handler that wants one answer: each opens its own read session.

async def page_views(db: Database, rows: Sequence[tuple[Conversation, Contact]]) -> list[ConversationView]:
    async with db.read() as s:
        return await conversation_views(s, rows)


async def view_of(db: Database, conv: Conversation, contact: Contact) -> ConversationView:
    async with db.read() as s:
        return await one_conversation_view(s, conv, contact)


async def unread_counts(db: Database, operator_id: int) -> dict[str, int]:
    async with db.read() as s:
        return await unread_per_tab(s, operator_id)
