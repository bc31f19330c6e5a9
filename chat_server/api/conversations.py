"""Conversations: the inbox list, one conversation, and what operators do to it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Literal

from ..actions.conversations import do_assign, do_set_status, do_set_tags
from ..actions.errors import ActionError, NotFound
from ..actions.messages import do_operator_read
from ..db import Database
from ..frames import ConversationView
from ..models import Conversation, Status
from ..models.ids import MAX_ROW_ID
from ..reads import conversation_list as listing
from ..reads import conversations as reads
from ..reads.conversations import ConversationFilter
from . import schemas as sc
from .framework import Call, Operation, endpoint


def encode_cursor(at: datetime, conversation_id: int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{conversation_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        when, conversation_id = datetime.fromisoformat(at), int(ident)
        # In UTC now: near the ends of the calendar the conversion overflows, here and not in the query.
        when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
        if not 0 < conversation_id <= MAX_ROW_ID:  # a forged one: no row has it, no database compares it
            raise ValueError(ident)
        return when, conversation_id
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise ActionError("invalid_cursor", "cursor is not one this API gave out") from exc


def _assignee(raw: Literal["me", "none"] | int | None, me: int | None) -> int | Literal["none"] | None:
    if raw == "me":
        return me
    return raw


def conversation_filter(q: sc.ConversationQuery, me: int | None) -> ConversationFilter:
    return ConversationFilter(
        status=q.status, assignee=_assignee(q.assignee, me), channel=q.channel, tag=q.tag, q=q.q,
        unread=None if q.unread is None else q.unread == "true",
        after=decode_cursor(q.cursor) if q.cursor else None,
    )


async def list_conversations(c: Call[None, sc.ConversationQuery]) -> sc.ConversationPage:
    limit = sc.limit_of(c.query.limit)
    rows = await reads.page(c.rt.db, conversation_filter(c.query, c.me.id), limit)
    last = rows[limit - 1][0] if len(rows) > limit else None
    return sc.ConversationPage(
        items=await listing.page_views(c.rt.db, rows[:limit]),
        next_cursor=encode_cursor(last.last_activity_at, last.id) if last and last.id else None,
    )


async def get_conversation(c: Call[None, None]) -> ConversationView:
    found = await reads.with_contact(c.rt.db, c.path_int("id"))
    if found is None:
        raise NotFound("conversation_not_found", "no such conversation")
    return await listing.view_of(c.rt.db, *found)


async def unread(c: Call[None, None]) -> sc.UnreadCounts:
    assert c.me.id is not None
    return sc.UnreadCounts(**await listing.unread_counts(c.rt.db, c.me.id))


async def _fresh_view(db: Database, conv: Conversation) -> ConversationView:
    contact = await reads.contact_of(db, conv)
    if contact is None:
        raise NotFound("contact_not_found", "no such contact")
    return await listing.view_of(db, conv, contact)


async def assign(c: Call[sc.AssignBody, None]) -> ConversationView:
    return await _fresh_view(c.rt.db, await do_assign(c.rt, c.me, c.path_int("id"), c.body.assignee_id))


async def status(c: Call[sc.StatusBody, None]) -> ConversationView:
    conv = await do_set_status(c.rt, c.me, c.path_int("id"), Status(c.body.status), c.body.snoozed_until)
    return await _fresh_view(c.rt.db, conv)


async def tags(c: Call[sc.TagsBody, None]) -> ConversationView:
    return await _fresh_view(c.rt.db, await do_set_tags(c.rt, c.me, c.path_int("id"), c.body.tags))


async def read(c: Call[sc.ReadBody, None]) -> dict[str, bool]:
    await do_operator_read(c.rt, c.me, c.path_int("id"), c.body.seq)
    return {"ok": True}


routes: list[Operation] = [
    endpoint("GET", "/conversations", list_conversations, summary="Conversations by last activity, filtered",
             query=sc.ConversationQuery, response=sc.ConversationPage),
    endpoint("GET", "/conversations/unread", unread, summary="How many open conversations have unread messages, per tab",
             response=sc.UnreadCounts),
    endpoint("GET", "/conversations/{id:int}", get_conversation, summary="One conversation", response=ConversationView),
    endpoint("POST", "/conversations/{id:int}/assign", assign, summary="Assign (or unassign with null)",
             body=sc.AssignBody),
    endpoint("POST", "/conversations/{id:int}/status", status, summary="Open, close or snooze", body=sc.StatusBody),
    endpoint("POST", "/conversations/{id:int}/tags", tags, summary="Replace the tags", body=sc.TagsBody),
    endpoint("POST", "/conversations/{id:int}/read", read, summary="Mark read up to seq", body=sc.ReadBody),
]
