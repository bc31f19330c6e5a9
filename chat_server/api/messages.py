"""A conversation's messages: history, replies, notes, and a channel message as it arrived."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..actions.attachments import resolve_attachments
from ..actions.errors import NotFound
from ..actions.messages import do_send_operator_message
from ..reads import messages as reads
from ..views import message_view
from . import schemas as sc
from .framework import Call, Operation, endpoint


class OriginalView(BaseModel):
    message_id: int
    text: str
    original: str
    subject: str | None
    # An email's signature, cut from `text` and kept here.
    signature: str | None = None
    edits: list[dict[str, Any]]
    # Set when the update was only partly understood: what was not, and the update as it came.
    partly_understood: str | None = None
    raw: dict[str, Any] | None = None


async def history(c: Call[None, sc.HistoryQuery]) -> sc.MessagePage:
    limit = sc.limit_of(c.query.limit)
    before = int(c.query.before_seq) if c.query.before_seq is not None else None
    rows = await reads.history(c.rt.db, c.path_int("id"), before, limit)
    if rows is None:
        raise NotFound("conversation_not_found", "no such conversation")
    page = list(reversed(rows[:limit]))
    return sc.MessagePage(items=[message_view(m) for m in page],
                          next_before_seq=page[0].seq if len(rows) > limit else None)


async def reply(c: Call[sc.ReplyBody, None]) -> sc.SentMessage:
    attachments = await resolve_attachments(c.rt, c.body.attachment_ids, staff=True)
    stored = await do_send_operator_message(c.rt, c.me, c.path_int("id"), c.body.text,
                                            client_msg_id=c.body.client_msg_id, channel=c.body.channel,
                                            attachments=attachments)
    return sc.SentMessage(message=message_view(stored.message), duplicate=stored.duplicate)


async def note(c: Call[sc.NoteBody, None]) -> sc.SentMessage:
    stored = await do_send_operator_message(c.rt, c.me, c.path_int("id"), c.body.text,
                                            client_msg_id=c.body.client_msg_id, note=True)
    return sc.SentMessage(message=message_view(stored.message), duplicate=stored.duplicate)


async def original(c: Call[None, None]) -> OriginalView:
    message = await reads.message(c.rt.db, c.path_int("id"))
    if message is None or message.id is None:
        raise NotFound("message_not_found", "no such message")
    return OriginalView(message_id=message.id, text=message.text, original=message.meta.get("original", message.text),
                        subject=message.meta.get("subject"), signature=message.meta.get("signature"),
                        edits=message.meta.get("edits", []), partly_understood=message.meta.get("partial"),
                        raw=message.meta.get("raw"))


routes: list[Operation] = [
    endpoint("GET", "/conversations/{id:int}/messages", history, summary="History, newest first, by cursor",
             query=sc.HistoryQuery, response=sc.MessagePage),
    endpoint("POST", "/conversations/{id:int}/messages", reply, summary="Reply to the contact", body=sc.ReplyBody,
             response=sc.SentMessage, status=201),
    endpoint("POST", "/conversations/{id:int}/notes", note, summary="Add a private note", body=sc.NoteBody,
             response=sc.SentMessage, status=201),
    endpoint("GET", "/messages/{id:int}/original", original,
             summary="A channel message as it arrived (full email, edits)", response=OriginalView),
]
