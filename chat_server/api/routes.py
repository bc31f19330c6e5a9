"""The REST API under /api/v1."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, and_, exists, func, or_, text
from sqlmodel import col, select
from starlette.routing import Route

from ..actions.attachments import resolve_attachments
from ..actions.contacts import get_contact
from ..actions.conversations import do_assign, do_set_status, do_set_tags
from ..actions.errors import ActionError, NotFound
from ..actions.merge import do_merge_contacts
from ..actions.messages import do_operator_read, do_send_operator_message
from ..actions.operators import (
    do_create_operator,
    do_login,
    do_logout,
    do_set_availability,
    do_update_operator,
)
from ..frames import ConversationView, OperatorView
from ..models import (
    Availability,
    Contact,
    ContactIdentity,
    ContactMerge,
    Conversation,
    Event,
    Message,
    Operator,
    Role,
    Status,
)
from ..views import conversation_view, message_view, operator_view
from . import api_keys, attachments, inbox_api, scoring, segments, site, tracking
from . import schemas as sc
from .framework import Call, Registry, openapi_document

PREFIX = "/api/v1"
api = Registry()


# --- auth -----------------------------------------------------------------------------------

@api.add("POST", "/auth/login", summary="Log in; returns a bearer token", body=sc.LoginBody,
         response=sc.LoginResult, auth=None)
async def login(c: Call) -> sc.LoginResult:
    token, operator = await do_login(c.rt, c.body.email, c.body.password)
    return sc.LoginResult(token=token, operator=operator_view(operator))


@api.add("POST", "/auth/logout", summary="End this token's session")
async def logout(c: Call) -> dict[str, bool]:
    assert c.token is not None
    await do_logout(c.rt, c.token)
    return {"ok": True}


@api.add("GET", "/me", summary="The logged-in operator", response=OperatorView)
async def me(c: Call) -> Any:
    return operator_view(c.me)


@api.add("POST", "/me/availability", summary="Go online or away", body=sc.AvailabilityBody)
async def availability(c: Call) -> Any:
    return operator_view(await do_set_availability(c.rt, c.me, Availability(c.body.availability)))


# --- conversations --------------------------------------------------------------------------

def _encode_cursor(at: datetime, conversation_id: int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{conversation_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        at, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), int(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ActionError("invalid_cursor", "cursor is not one this API gave out") from exc


def _has_tag(dialect: str, tag: str) -> TextClause:
    if dialect == "postgresql":
        return text("conversation.tags @> CAST(:tag_json AS jsonb)").bindparams(tag_json=json.dumps([tag]))
    return text("EXISTS (SELECT 1 FROM json_each(conversation.tags) WHERE json_each.value = :tag)").bindparams(tag=tag)


@api.add("GET", "/conversations", summary="Conversations by last activity, filtered",
         query=sc.ConversationQuery, response=sc.ConversationPage)
async def list_conversations(c: Call) -> sc.ConversationPage:
    q: sc.ConversationQuery = c.query
    limit = sc.limit_of(q.limit)
    query = select(Conversation, Contact).join(Contact, Contact.id == Conversation.contact_id)  # type: ignore[arg-type]
    if q.status:
        query = query.where(Conversation.status == q.status)
    if q.assignee == "me":
        query = query.where(Conversation.assignee_id == c.me.id)
    elif q.assignee == "none":
        query = query.where(col(Conversation.assignee_id).is_(None))
    elif q.assignee:
        query = query.where(Conversation.assignee_id == int(q.assignee))
    if q.channel:
        query = query.where(exists().where(col(Message.conversation_id) == Conversation.id,
                                           col(Message.channel) == q.channel))
    if q.tag:
        query = query.where(_has_tag(c.rt.db.write_engine.dialect.name, q.tag))
    if q.q:
        pattern = "%" + q.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(
            *(func.lower(col(f)).like(pattern, escape="\\") for f in (Contact.name, Contact.email, Contact.phone)),
            exists().where(col(Message.conversation_id) == Conversation.id,
                           func.lower(col(Message.text)).like(pattern, escape="\\")),
        ))
    if q.unread == "true":
        query = query.where(col(Conversation.last_inbound_seq) > col(Conversation.operator_read_seq))
    elif q.unread == "false":
        query = query.where(col(Conversation.last_inbound_seq) <= col(Conversation.operator_read_seq))
    if q.cursor:
        at, ident = _decode_cursor(q.cursor)
        query = query.where(or_(col(Conversation.last_activity_at) < at,
                                and_(col(Conversation.last_activity_at) == at, col(Conversation.id) < ident)))
    query = query.order_by(col(Conversation.last_activity_at).desc(), col(Conversation.id).desc()).limit(limit + 1)
    async with c.rt.db.read() as s:
        rows = (await s.exec(query)).all()
    items = [conversation_view(conv, contact) for conv, contact in rows[:limit]]
    last = rows[limit - 1][0] if len(rows) > limit else None
    return sc.ConversationPage(
        items=items, next_cursor=_encode_cursor(last.last_activity_at, last.id) if last and last.id else None
    )


async def _conversation(c: Call) -> tuple[Conversation, Contact]:
    async with c.rt.db.read() as s:
        conv = await s.get(Conversation, c.path_int("id"))
        if conv is None:
            raise NotFound("conversation_not_found", "no such conversation")
        return conv, await get_contact(s, conv.contact_id)


@api.add("GET", "/conversations/{id:int}", summary="One conversation", response=ConversationView)
async def get_conversation(c: Call) -> Any:
    return conversation_view(*await _conversation(c))


@api.add("GET", "/conversations/{id:int}/messages", summary="History, newest first, by cursor",
         query=sc.HistoryQuery, response=sc.MessagePage)
async def history(c: Call) -> sc.MessagePage:
    conv, _ = await _conversation(c)
    q: sc.HistoryQuery = c.query
    limit = sc.limit_of(q.limit)
    query = select(Message).where(Message.conversation_id == conv.id)
    if q.before_seq is not None:
        query = query.where(col(Message.seq) < int(q.before_seq))
    async with c.rt.db.read() as s:
        rows = (await s.exec(query.order_by(col(Message.seq).desc()).limit(limit + 1))).all()
    page = list(reversed(rows[:limit]))
    return sc.MessagePage(items=[message_view(m) for m in page],
                          next_before_seq=page[0].seq if len(rows) > limit else None)


@api.add("POST", "/conversations/{id:int}/messages", summary="Reply to the contact", body=sc.ReplyBody,
         response=sc.SentMessage, status=201)
async def reply(c: Call) -> sc.SentMessage:
    attachments = await resolve_attachments(c.rt, c.body.attachment_ids, staff=True)
    stored = await do_send_operator_message(c.rt, c.me, c.path_int("id"), c.body.text,
                                            client_msg_id=c.body.client_msg_id, channel=c.body.channel,
                                            attachments=attachments)
    return sc.SentMessage(message=message_view(stored.message), duplicate=stored.duplicate)


@api.add("POST", "/conversations/{id:int}/notes", summary="Add a private note", body=sc.NoteBody,
         response=sc.SentMessage, status=201)
async def note(c: Call) -> sc.SentMessage:
    stored = await do_send_operator_message(c.rt, c.me, c.path_int("id"), c.body.text,
                                            client_msg_id=c.body.client_msg_id, note=True)
    return sc.SentMessage(message=message_view(stored.message), duplicate=stored.duplicate)


async def _fresh_view(c: Call, conv: Conversation) -> Any:
    async with c.rt.db.read() as s:
        return conversation_view(conv, await get_contact(s, conv.contact_id))


@api.add("POST", "/conversations/{id:int}/assign", summary="Assign (or unassign with null)", body=sc.AssignBody)
async def assign(c: Call) -> Any:
    return await _fresh_view(c, await do_assign(c.rt, c.me, c.path_int("id"), c.body.assignee_id))


@api.add("POST", "/conversations/{id:int}/status", summary="Open, close or snooze", body=sc.StatusBody)
async def status(c: Call) -> Any:
    conv = await do_set_status(c.rt, c.me, c.path_int("id"), Status(c.body.status), c.body.snoozed_until)
    return await _fresh_view(c, conv)


@api.add("POST", "/conversations/{id:int}/tags", summary="Replace the tags", body=sc.TagsBody)
async def tags(c: Call) -> Any:
    return await _fresh_view(c, await do_set_tags(c.rt, c.me, c.path_int("id"), c.body.tags))


@api.add("POST", "/conversations/{id:int}/read", summary="Mark read up to seq", body=sc.ReadBody)
async def read(c: Call) -> dict[str, bool]:
    await do_operator_read(c.rt, c.me, c.path_int("id"), c.body.seq)
    return {"ok": True}


# --- contacts -------------------------------------------------------------------------------

def contact_view(contact: Contact) -> sc.ContactView:
    return sc.ContactView.model_validate(contact, from_attributes=True)


@api.add("GET", "/contacts", summary="Contacts, newest first; q searches name, email, phone",
         query=sc.ContactQuery, response=sc.ContactPage)
async def list_contacts(c: Call) -> sc.ContactPage:
    q: sc.ContactQuery = c.query
    limit = sc.limit_of(q.limit)
    query = select(Contact).where(col(Contact.merged_into_id).is_(None))
    if q.q:
        pattern = "%" + q.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(*(func.lower(col(f)).like(pattern, escape="\\")
                                  for f in (Contact.name, Contact.email, Contact.phone))))
    if q.cursor:
        query = query.where(col(Contact.id) < int(q.cursor))
    async with c.rt.db.read() as s:
        rows = (await s.exec(query.order_by(col(Contact.id).desc()).limit(limit + 1))).all()
    page = rows[:limit]
    return sc.ContactPage(items=[contact_view(r) for r in page],
                          next_cursor=str(page[-1].id) if len(rows) > limit else None)


@api.add("GET", "/contacts/{id:int}", summary="The contact card: identities, conversation, events, merges",
         response=sc.ContactCard)
async def contact_card(c: Call) -> sc.ContactCard:
    async with c.rt.db.read() as s:
        contact = await get_contact(s, c.path_int("id"))
        if contact.merged_into_id is not None:
            contact = await get_contact(s, contact.merged_into_id)
        identities = (await s.exec(select(ContactIdentity).where(ContactIdentity.contact_id == contact.id))).all()
        conv = (await s.exec(select(Conversation).where(Conversation.contact_id == contact.id))).first()
        events = (await s.exec(select(Event).where(Event.contact_id == contact.id)
                               .order_by(col(Event.occurred_at).desc()).limit(200))).all()
        merges = (await s.exec(select(ContactMerge).where(ContactMerge.survivor_id == contact.id)
                               .order_by(col(ContactMerge.id)))).all()
    return sc.ContactCard(
        contact=contact_view(contact),
        identities=[sc.IdentityView.model_validate(i, from_attributes=True) for i in identities],
        conversation=conversation_view(conv, contact) if conv else None,
        events=[sc.EventView.model_validate(e, from_attributes=True) for e in events],
        merges=[sc.MergeView.model_validate(m, from_attributes=True) for m in merges],
    )


@api.add("POST", "/contacts/{id:int}/merge", summary="Merge another contact into this one", body=sc.MergeBody)
async def merge(c: Call) -> dict[str, int]:
    record = await do_merge_contacts(c.rt, c.path_int("id"), c.body.other_contact_id, c.body.reason,
                                     operator=c.me)
    assert record.id is not None
    return {"merge_id": record.id}


# --- operators ------------------------------------------------------------------------------

@api.add("GET", "/operators", summary="The team", response=sc.OperatorList)
async def list_operators(c: Call) -> sc.OperatorList:
    async with c.rt.db.read() as s:
        rows = (await s.exec(select(Operator).order_by(col(Operator.id)))).all()
    return sc.OperatorList(items=[operator_view(o) for o in rows])


@api.add("POST", "/operators", summary="Invite an operator (admins)", body=sc.OperatorCreateBody,
         auth="admin", status=201)
async def create_operator(c: Call) -> Any:
    b: sc.OperatorCreateBody = c.body
    return operator_view(await do_create_operator(c.rt, b.name, b.email, b.password, Role(b.role)))


@api.add("PATCH", "/operators/{id:int}", summary="Change role, name, password or deactivate (admins)",
         body=sc.OperatorUpdateBody, auth="admin")
async def update_operator(c: Call) -> Any:
    b: sc.OperatorUpdateBody = c.body
    operator = await do_update_operator(c.rt, c.me, c.path_int("id"), name=b.name,
                                        role=Role(b.role) if b.role else None, is_active=b.is_active,
                                        password=b.password)
    return operator_view(operator)


@api.add("GET", "/openapi.json", summary="This document", auth=None)
async def openapi(c: Call) -> dict[str, Any]:
    return openapi_document([ep for r in REGISTRIES for ep in r.endpoints], PREFIX)


# Each API module keeps its own registry; they are served and documented together.
REGISTRIES = [api, attachments.api, site.api, inbox_api.api, segments.api, scoring.api, api_keys.api, tracking.api]


def routes() -> list[Route]:
    return [ep.route(PREFIX) for r in REGISTRIES for ep in r.endpoints]
