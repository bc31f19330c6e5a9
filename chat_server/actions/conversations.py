"""Conversation state: assignment, open / snoozed / closed, tags."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select

from ..db import WriteSession
from ..models import Contact, Conversation, Message, Operator, Role, Status
from ..models.types import utcnow
from ..reads.conversation_list import list_summary
from ..runtime import Runtime
from .errors import ActionError, NotFound
from .messages import check_can_write, do_append_system_line, locked_conversation
from .publish import conversation_dispatch, message_dispatches
from .validation import check_storable
from .webhook_events import emit_status_changed

MAX_TAGS = 20
MAX_TAG_LENGTH = 50


async def _publish_change(s: WriteSession, conv: Conversation, line: Message | None) -> None:
    """The new state of the conversation for every inbox, and the system line saying why."""
    await s.flush()
    contact = await s.get(Contact, conv.contact_id)
    assert contact is not None
    s.publish([conversation_dispatch(conv, contact, await list_summary(s, conv))])
    if line is not None:
        s.publish(message_dispatches(line, conv))


async def do_assign(rt: Runtime, actor: Operator, conversation_id: int, assignee_id: int | None) -> Conversation:
    check_can_write(actor)
    async with rt.db.write() as s:
        conv = await locked_conversation(s, conversation_id)
        assignee = None
        if assignee_id is not None:
            assignee = await s.get(Operator, assignee_id)
            if assignee is None or not assignee.is_active:
                raise NotFound("operator_not_found", "no such active operator")
            if assignee.role == Role.sales:
                raise ActionError("invalid_assignee", "sales accounts cannot be assigned conversations")
        if conv.assignee_id == assignee_id:
            line = None
        else:
            conv.assignee_id = assignee_id
            text = (f"{actor.name} assigned the conversation to {assignee.name}" if assignee
                    else f"{actor.name} unassigned the conversation")
            line = await do_append_system_line(s, conv, text, actor, "assigned" if assignee else "unassigned")
        await _publish_change(s, conv, line)
    return conv


def check_status(status: Status, snoozed_until: datetime | None) -> None:
    if status == Status.snoozed:
        if snoozed_until is None:
            raise ActionError("snooze_needs_time", "snoozing needs snoozed_until")
        if snoozed_until <= utcnow():
            raise ActionError("snooze_in_past", "snoozed_until must be in the future")
    elif snoozed_until is not None:
        raise ActionError("invalid_snooze", "snoozed_until is only for status 'snoozed'")


async def do_set_status(
    rt: Runtime, actor: Operator | None, conversation_id: int, status: Status, snoozed_until: datetime | None = None
) -> Conversation:
    """Close, reopen or snooze. A contact's next message reopens (see do_contact_message)."""
    if actor is not None:
        check_can_write(actor)
        check_status(status, snoozed_until)
    async with rt.db.write() as s:
        conv = await locked_conversation(s, conversation_id)
        line = None
        if conv.status != status or conv.snoozed_until != snoozed_until:
            if conv.status != status:
                emit_status_changed(s, conv, conv.status, actor.id if actor else None)
            conv.status, conv.snoozed_until = status, snoozed_until
            who = actor.name if actor else "Snooze"
            verb = {
                Status.open: "reopened the conversation" if actor else "ended: the conversation is open again",
                Status.closed: "closed the conversation",
                Status.snoozed: f"snoozed the conversation until {snoozed_until:%Y-%m-%d %H:%M} UTC" if snoozed_until else "snoozed",
            }[status]
            status_event = {Status.open: "reopened", Status.closed: "closed", Status.snoozed: "snoozed"}
            line = await do_append_system_line(s, conv, f"{who} {verb}", actor, status_event[status])
        await _publish_change(s, conv, line)
    return conv


def check_tags(tags: list[str]) -> list[str]:
    cleaned: list[str] = []
    for tag in tags:
        tag = check_storable(tag.strip(), "tag")
        if not tag or len(tag) > MAX_TAG_LENGTH:
            raise ActionError("invalid_tag", f"tags are 1 to {MAX_TAG_LENGTH} characters")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise ActionError("too_many_tags", f"at most {MAX_TAGS} tags")
    return cleaned


async def do_set_tags(rt: Runtime, actor: Operator, conversation_id: int, tags: list[str]) -> Conversation:
    check_can_write(actor)
    tags = check_tags(tags)
    async with rt.db.write() as s:
        conv = await locked_conversation(s, conversation_id)
        conv.tags = tags
        s.add(conv)
        await _publish_change(s, conv, None)
    return conv


async def do_wake_snoozed(rt: Runtime) -> int:
    """Snoozed conversations whose time has come open again."""
    async with rt.db.read() as s:
        due = (
            await s.exec(select(Conversation.id).where(
                Conversation.status == Status.snoozed, col(Conversation.snoozed_until) <= utcnow()))
        ).all()
    for conversation_id in due:
        assert conversation_id is not None
        try:
            await do_set_status(rt, None, conversation_id, Status.open)
        except NotFound:
            continue  # merged away meanwhile
    return len(due)
