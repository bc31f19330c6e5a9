"""Messages arriving from Telegram, VK and email: which contact wrote, then store it once.

Who wrote is decided in this order:
1. a "continue in ..." link token joins the channel identity to the widget visitor's contact
   (merging the two contacts when both exist, recorded with the reason);
2. email only: the thread (`In-Reply-To` / `References` naming a message we have), then the
   `reply+<token>@` address, then a contact that has the sender's address;
3. the channel identity's own contact, created on first contact.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from integrations.base import InboundMessage

from ..models import Channel, ChannelInstance, Contact, ContactIdentity, Conversation, IdentityKind, Message
from ..models.types import utcnow
from ..runtime import Runtime
from .contacts import find_contact, find_or_create_contact
from .errors import ActionError
from .links import do_spend_link_token, read_reply_token
from .merge import do_merge_contacts
from .messages import do_append_system_line, do_contact_message
from .publish import message_dispatches
from .thread import Stored
from .validation import MAX_TEXT

log = logging.getLogger(__name__)

LABEL = {"telegram": "Telegram", "vk": "VK", "email": "email"}


def clean_text(text: str, limit: int = MAX_TEXT) -> str:
    """What a channel sent, made storable: no NULs or lone surrogates, within the length limit."""
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Outcome:
    stored: Stored | None = None
    contact_id: int | None = None
    note: str = ""  # why nothing was stored (duplicate, ignored, link only)


async def _thread_contact(s: AsyncSession, rt: Runtime, msg: InboundMessage) -> int | None:
    if msg.thread_ids:
        row = (await s.exec(
            select(Conversation.contact_id).join(Message, col(Message.conversation_id) == Conversation.id)
            .where(Message.channel == Channel.email, col(Message.external_id).in_(msg.thread_ids[-50:]))
            .order_by(col(Message.id).desc()).limit(1))).first()
        if row is not None:
            return row
    if msg.reply_token:
        conv_id = read_reply_token(rt.settings.effective_secret_key, msg.reply_token)
        if conv_id is not None:
            conv = await s.get(Conversation, conv_id)
            if conv is not None:
                return conv.contact_id
    return None


async def _contact_with_email(s: AsyncSession, address: str) -> Contact | None:
    found = await find_contact(s, IdentityKind.email, address)
    if found is not None:
        return found
    return (await s.exec(select(Contact).where(
        func.lower(col(Contact.email)) == address, col(Contact.merged_into_id).is_(None))
        .order_by(col(Contact.id)).limit(1))).first()


async def _attach_identity(s: AsyncSession, contact_id: int, kind: IdentityKind, value: str, reason: str) -> None:
    if await find_contact(s, kind, value) is None:
        s.add(ContactIdentity(kind=kind, value=value, contact_id=contact_id, linked_reason=reason[:200]))
        await s.flush()


async def _resolve(rt: Runtime, channel: str, msg: InboundMessage, name: str | None) -> tuple[int, bool]:
    """(contact id, created) for the sender, by the rules in the module docstring (2 and 3)."""
    kind = IdentityKind(channel)
    label = LABEL[channel]
    async with rt.db.write() as s:
        if channel == "email":
            threaded = await _thread_contact(s, rt, msg)
            if threaded is not None:
                await _attach_identity(s, threaded, kind, msg.sender_id, "email reply in the contact's thread")
                return threaded, False
            known = await _contact_with_email(s, msg.sender_id)
            if known is not None:
                assert known.id is not None
                await _attach_identity(s, known.id, kind, msg.sender_id, "email from the contact's address")
                return known.id, False
            fields: dict[str, Any] = {"email": msg.sender_id}
        else:
            fields = {}
        if name:
            fields["name"] = clean_text(name, 200)
        contact, created = await find_or_create_contact(s, kind, msg.sender_id, f"first message on {label}", **fields)
        assert contact.id is not None
        return contact.id, created


async def _link(rt: Runtime, channel: str, msg: InboundMessage, sender_contact: int) -> int:
    """Spend the link token and join the sender to the visitor's contact; the contact to use."""
    assert msg.link_token is not None
    target = await do_spend_link_token(rt, msg.link_token)
    if target is None or target == sender_contact:
        return sender_contact
    async with rt.db.read() as s:
        contact = await s.get(Contact, target)
        while contact is not None and contact.merged_into_id is not None:
            contact = await s.get(Contact, contact.merged_into_id)
    if contact is None or contact.id is None or contact.id == sender_contact:
        return sender_contact
    reason = f"followed the widget's \"continue in {LABEL[channel]}\" link"
    try:
        await do_merge_contacts(rt, contact.id, sender_contact, reason, identity=(channel, msg.sender_id))
    except ActionError as exc:  # e.g. two different signed-in users: keep them apart
        log.warning("not linking %s %s to contact %s: %s", channel, msg.sender_id, contact.id, exc.message)
        return sender_contact
    return contact.id


async def _apply_edit(rt: Runtime, channel: Channel, msg: InboundMessage) -> Stored | None:
    async with rt.db.write() as s:
        original = (await s.exec(select(Message).where(
            Message.channel == channel, Message.external_id == msg.edits).with_for_update())).first()
        if original is None:
            return None
        text = clean_text(msg.text)
        if text == original.text:
            conv = await s.get(Conversation, original.conversation_id)
            assert conv is not None
            return Stored(original, conv, duplicate=True)
        history = [*original.meta.get("edits", []), {"text": original.text, "replaced_at": utcnow().isoformat()}]
        original.meta = {**original.meta, "edits": history[-20:], "edited": True}
        original.text = text
        original.updated_at = utcnow()
        s.add(original)
        conv = await s.get(Conversation, original.conversation_id)
        assert conv is not None
        s.publish(message_dispatches(original, conv, updated=True))
    return Stored(original, conv)


async def do_channel_update(
    rt: Runtime, instance: ChannelInstance, msg: InboundMessage,
    store_files: Callable[[InboundMessage, int], Awaitable[list[dict[str, Any]]]],
    profile_name: Callable[[], Awaitable[str | None]] | None = None,
) -> Outcome:
    """Store one message a person sent on a channel instance (once, however often it arrives)."""
    assert instance.id is not None
    channel = Channel(instance.channel)
    if msg.ignored:
        return Outcome(note=f"ignored: {msg.ignored}")
    async with rt.db.read() as s:
        known = (await s.exec(select(Message.id).where(
            Message.channel == channel, Message.external_id == msg.external_id))).first()
        new_sender = await find_contact(s, IdentityKind(channel.value), msg.sender_id) is None
    if known is not None:
        return Outcome(note="duplicate")
    if msg.edits:
        edited = await _apply_edit(rt, channel, msg)
        if edited is not None:
            return Outcome(stored=edited, contact_id=edited.conversation.contact_id, note="edit")
    name = msg.sender_name
    if name is None and new_sender and profile_name is not None:
        try:
            name = await profile_name()  # fetched once: only for a sender we have never seen
        except Exception:  # the name is a nicety; the message must still be stored
            log.warning("could not fetch the %s profile of %s", channel.value, msg.sender_id, exc_info=True)
    contact_id, _ = await _resolve(rt, channel.value, msg, name)
    if msg.link_token:
        contact_id = await _link(rt, channel.value, msg, contact_id)
    attachments = await store_files(msg, contact_id) if msg.attachments else []
    text = clean_text(msg.text)  # after the files: a refused file is named in the text
    if not text.strip() and not attachments:
        if msg.link_token:
            await _note_link(rt, contact_id, channel)
        return Outcome(contact_id=contact_id, note="nothing to store")
    meta: dict[str, Any] = {"sender_id": msg.sender_id}
    if msg.subject is not None:
        meta["subject"] = msg.subject
    if msg.thread_ids:
        meta["references"] = msg.thread_ids[-20:]
    if msg.original is not None and msg.original.strip() != text.strip():
        meta["original"] = clean_text(msg.original, 100_000)
    if msg.signature:
        meta["signature"] = clean_text(msg.signature, 5_000)
    stored = await do_contact_message(
        rt, contact_id, channel, text, external_id=msg.external_id, attachments=attachments,
        author_name=clean_text(msg.sender_name, 200) if msg.sender_name else name,
        channel_instance_id=instance.id, meta=meta, follow_merges=True,
    )
    return Outcome(stored=stored, contact_id=contact_id, note="duplicate" if stored.duplicate else "stored")


async def _note_link(rt: Runtime, contact_id: int, channel: Channel) -> None:
    """A bare "/start <token>": no message, but the thread says the person moved channels."""
    async with rt.db.write() as s:
        conv = (await s.exec(select(Conversation).where(Conversation.contact_id == contact_id)
                             .with_for_update())).first()
        if conv is None:
            return
        line = await do_append_system_line(s, conv, f"The contact continued on {LABEL[channel.value]}", None)
        await s.flush()
        s.publish(message_dispatches(line, conv))
