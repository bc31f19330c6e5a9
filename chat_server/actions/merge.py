"""Merging two contacts that turned out to be one person.

Identities, events and messages move to the survivor; the two threads interleave by time
(renumbered, so clients reload them: the conversation's epoch goes up); the survivor's
property values win and the absorbed contact fills the gaps; an audit record keeps why.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..bus import Audience, Dispatch, DispatchKind
from ..frames import ConversationRemovedFrame, ResetFrame
from ..models import (
    Attachment,
    Contact,
    ContactIdentity,
    ContactMerge,
    Conversation,
    Direction,
    Event,
    IdentityKind,
    Message,
    Operator,
    Status,
)
from ..reads.conversation_list import EMPTY, list_summary
from ..runtime import Runtime
from ..views import ListSummary
from .contacts import conversation_of, get_contact
from .errors import ActionError, Conflict
from .messages import check_can_write, do_append_system_line
from .publish import STAFF, contact_audience, conversation_dispatch, message_dispatches
from .scoring import fold_merge
from .webhook_events import contact_data, emit

FILLED_FIELDS = ("name", "email", "phone", "first_referrer", "first_landing_page")


async def check_mergeable(s: AsyncSession, survivor: Contact, merged: Contact) -> None:
    if survivor.id == merged.id:
        raise ActionError("same_contact", "a contact cannot be merged with itself")
    if survivor.merged_into_id is not None or merged.merged_into_id is not None:
        raise Conflict("already_merged", "one of these contacts was already merged into another")
    user_ids = (
        await s.exec(select(ContactIdentity.contact_id, ContactIdentity.value).where(
            ContactIdentity.kind == IdentityKind.user_id,
            col(ContactIdentity.contact_id).in_([survivor.id, merged.id])))
    ).all()
    if len({value for _, value in user_ids}) > 1:
        raise Conflict("different_users", "both contacts are different signed-in users of the site")


def _absorb_properties(survivor: Contact, merged: Contact) -> None:
    for name in FILLED_FIELDS:
        if getattr(survivor, name) in (None, ""):
            setattr(survivor, name, getattr(merged, name))
    survivor.properties = {**merged.properties, **survivor.properties}
    survivor.first_utm = survivor.first_utm or merged.first_utm
    survivor.first_seen_at = min(survivor.first_seen_at, merged.first_seen_at)
    survivor.last_seen_at = max(survivor.last_seen_at, merged.last_seen_at)
    survivor.sessions += merged.sessions
    survivor.score += merged.score


def _snapshot(c: Contact) -> dict[str, Any]:
    return {k: v for k, v in c.model_dump(mode="json").items() if k != "id"}


def _read_prefix(flags: list[tuple[int, bool]]) -> int:
    """The furthest position up to which everything was read."""
    last = 0
    for position, was_read in flags:
        if not was_read:
            break
        last = position
    return last


async def _interleave(s: AsyncSession, keep: Conversation, gone: Conversation) -> None:
    """Fold `gone`'s messages into `keep`, ordered by time, renumbered from 1."""
    messages = list((await s.exec(
        select(Message).where(col(Message.conversation_id).in_([keep.id, gone.id])))).all())
    read_by_operator = {m.id: m.seq <= (keep if m.conversation_id == keep.id else gone).operator_read_seq for m in messages}
    read_by_contact = {
        m.id: m.public_seq is not None and m.public_seq <= (keep if m.conversation_id == keep.id else gone).contact_read_public_seq
        for m in messages
    }
    taken = {m.client_msg_id for m in messages if m.conversation_id == keep.id and m.client_msg_id}
    messages.sort(key=lambda m: (m.created_at, m.conversation_id != keep.id, m.seq))
    # Park every row outside the unique (conversation, seq) range, then number them anew.
    await s.exec(update(Message).where(col(Message.conversation_id).in_([keep.id, gone.id]))
                 .values(seq=-col(Message.id), conversation_id=keep.id)
                 .execution_options(synchronize_session=False))
    rows: list[dict[str, Any]] = []
    seq = public = 0
    op_flags: list[tuple[int, bool]] = []
    contact_flags: list[tuple[int, bool]] = []
    for m in messages:
        seq += 1
        row: dict[str, Any] = {"id": m.id, "seq": seq, "public_seq": None}
        if m.public_seq is not None:
            public += 1
            row["public_seq"] = public
            contact_flags.append((public, read_by_contact[m.id]))
        if m.conversation_id != keep.id and m.client_msg_id in taken:
            row["client_msg_id"] = None  # two devices happened to pick the same id
        op_flags.append((seq, read_by_operator[m.id]))
        if m.direction == Direction.inbound:
            keep.last_inbound_seq, keep.last_inbound_channel = seq, m.channel
        rows.append(row)
    if rows:
        await s.exec(update(Message).execution_options(synchronize_session=False), params=rows)
    keep.last_seq, keep.last_public_seq = seq, public
    keep.operator_read_seq = _read_prefix(op_flags)
    keep.operator_read_public_seq = max(
        (r["public_seq"] for r in rows if r["public_seq"] and r["seq"] <= keep.operator_read_seq), default=0)
    keep.contact_read_public_seq = _read_prefix(contact_flags)
    keep.last_activity_at = max(keep.last_activity_at, gone.last_activity_at)
    if Status.open in (keep.status, gone.status):
        keep.status, keep.snoozed_until = Status.open, None
    keep.assignee_id = keep.assignee_id or gone.assignee_id
    keep.tags = keep.tags + [t for t in gone.tags if t not in keep.tags]
    keep.epoch = max(keep.epoch, gone.epoch) + 1
    s.add(keep)
    await s.flush()
    s.expunge(gone)
    await s.exec(delete(Conversation).where(col(Conversation.id) == gone.id).execution_options(synchronize_session=False))


async def do_merge_contacts(
    rt: Runtime, survivor_id: int, merged_id: int, reason: str, *,
    identity: tuple[str, str] | None = None, operator: Operator | None = None,
) -> ContactMerge:
    if operator is not None:
        check_can_write(operator)
    async with rt.db.write() as s:
        survivor = await get_contact(s, survivor_id)
        merged = await get_contact(s, merged_id)
        await check_mergeable(s, survivor, merged)
        snapshot = _snapshot(merged)
        _absorb_properties(survivor, merged)
        merged.merged_into_id = survivor_id
        merged.email = None  # one person, one card: the absorbed card no longer claims the address
        await s.exec(update(ContactIdentity).where(col(ContactIdentity.contact_id) == merged_id)
                     .values(contact_id=survivor_id, linked_reason=f"merge: {reason}"[:200]))
        await s.exec(update(Event).where(col(Event.contact_id) == merged_id).values(contact_id=survivor_id))
        await s.exec(update(Attachment).where(col(Attachment.contact_id) == merged_id).values(contact_id=survivor_id))
        keep = await conversation_of(s, survivor_id, lock=True)
        gone = await conversation_of(s, merged_id, lock=True)
        renumbered = keep is not None and gone is not None
        gone_id = gone.id if gone else None
        if keep is not None and gone is not None:
            await s.exec(update(Attachment).where(col(Attachment.conversation_id) == gone.id)
                         .values(conversation_id=keep.id))
            await _interleave(s, keep, gone)
        elif gone is not None:
            gone.contact_id = survivor_id
            keep = gone
        line = None
        if keep is not None:
            who = f"by {operator.name}" if operator else "automatically"
            line = await do_append_system_line(
                s, keep, f"Merged contact #{merged_id} into this one {who}: {reason}", operator, "merged")
        record = ContactMerge(
            survivor_id=survivor_id, merged_id=merged_id, reason=reason,
            identity_kind=identity[0] if identity else None, identity_value=identity[1] if identity else None,
            operator_id=operator.id if operator else None, merged_snapshot=snapshot,
        )
        s.add_all([survivor, merged, record])
        await s.flush()
        await fold_merge(s, rt, survivor_id, merged_id)
        await s.refresh(survivor)
        summary = await list_summary(s, keep) if keep is not None else EMPTY
        s.publish(_merge_dispatches(survivor, merged_id, keep, gone_id, renumbered, line, summary))
        emit(s, "contact.merged", {**contact_data(survivor), "merged_id": merged_id, "reason": reason}, survivor_id)
    return record


def _merge_dispatches(
    survivor: Contact, merged_id: int, keep: Conversation | None, gone_id: int | None,
    renumbered: bool, line: Message | None, summary: ListSummary,
) -> list[Dispatch]:
    assert survivor.id is not None
    reset = ResetFrame(conversation_id=keep.id if keep else None, epoch=keep.epoch if keep else 1).model_dump_json()
    # The absorbed contact's open widgets now belong to the survivor and get its thread.
    dispatches = [Dispatch(DispatchKind.reset, Audience(), reset, rekey=(merged_id, survivor.id))]
    if keep is None:
        return dispatches
    if renumbered:
        assert gone_id is not None
        dispatches.append(Dispatch(DispatchKind.reset, contact_audience(survivor.id), reset, keep.id, epoch=keep.epoch,
                                   reset=True))
        dispatches.append(Dispatch(DispatchKind.reset, STAFF, reset, keep.id, epoch=keep.epoch, reset=True))
        removed = ConversationRemovedFrame(conversation_id=gone_id, merged_into_conversation_id=keep.id)
        dispatches.append(Dispatch(DispatchKind.conversation_removed, STAFF, removed.model_dump_json()))
    else:
        dispatches.append(Dispatch(DispatchKind.reset, contact_audience(survivor.id), reset, keep.id, epoch=keep.epoch,
                                   reset=True))
    dispatches.append(conversation_dispatch(keep, survivor, summary))
    if line is not None:
        dispatches += message_dispatches(line, keep)
    return dispatches
