"""Messages arriving from Telegram, VK and email: which contact wrote, then store it once.

Who wrote is decided in this order:
1. a "continue in ..." link token joins the channel identity to the widget visitor's contact
   (merging the two contacts when both exist, recorded with the reason);
2. email only: the thread (`In-Reply-To` / `References` naming a message we have), then the
   `reply+<token>@` address, then a contact that has the sender's address;
3. the channel identity's own contact, created on first contact.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from integrations.base import ChannelState, ForeignReply, InboundMessage

from ..models import (
    AuthorType,
    Channel,
    ChannelInstance,
    Contact,
    ContactIdentity,
    Conversation,
    DeliveryState,
    Direction,
    Event,
    IdentityKind,
    Kind,
    Message,
)
from ..models.types import utcnow
from ..runtime import Runtime
from .contacts import find_contact, find_or_create_contact
from .errors import ActionError
from .links import do_spend_link_token, read_reply_token
from .merge import do_merge_contacts
from .messages import do_append_system_line, do_contact_message, locked_conversation
from .publish import message_dispatches
from .thread import Stored, append
from .validation import MAX_TEXT
from .webhook_events import emit_message

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


BAD_LINK = "followed a \"continue in {}\" link that was expired, already used or not ours"


async def _link(rt: Runtime, channel: str, msg: InboundMessage, sender_contact: int) -> tuple[int, bool]:
    """Spend the link token and join the sender to the visitor's contact: (the contact to
    use, whether the token was good)."""
    assert msg.link_token is not None
    target = await do_spend_link_token(rt, msg.link_token)
    if target is None:
        return sender_contact, False
    if target == sender_contact:
        return sender_contact, True
    async with rt.db.read() as s:
        contact = await s.get(Contact, target)
        while contact is not None and contact.merged_into_id is not None:
            contact = await s.get(Contact, contact.merged_into_id)
    if contact is None or contact.id is None or contact.id == sender_contact:
        return sender_contact, True
    reason = f"followed the widget's \"continue in {LABEL[channel]}\" link"
    try:
        await do_merge_contacts(rt, contact.id, sender_contact, reason, identity=(channel, msg.sender_id))
    except ActionError as exc:  # e.g. two different signed-in users: keep them apart
        log.warning("not linking %s %s to contact %s: %s", channel, msg.sender_id, contact.id, exc.message)
        return sender_contact, True
    return contact.id, True


def _phone(value: str) -> str | None:
    digits = "".join(ch for ch in value if ch.isdigit())
    return f"+{digits}" if 5 <= len(digits) <= 20 else None


async def _share_phone(rt: Runtime, channel: str, contact_id: int, shared: str) -> int:
    """The person shared their own number: it becomes a phone identity of their card, or,
    when another card already has it, the two are joined by the merge rules (that card stays)."""
    phone = _phone(shared)
    if phone is None:
        return contact_id
    async with rt.db.write() as s:
        owner = await find_contact(s, IdentityKind.phone, phone)
        if owner is None:
            s.add(ContactIdentity(kind=IdentityKind.phone, value=phone, contact_id=contact_id,
                                  linked_reason=f"shared their phone number on {LABEL[channel]}"))
            contact = await s.get(Contact, contact_id)
            if contact is not None and not contact.phone:
                contact.phone = phone
                s.add(contact)
            return contact_id
    if owner.id is None or owner.id == contact_id:
        return contact_id
    reason = f"shared the phone number {phone} on {LABEL[channel]}"
    try:
        await do_merge_contacts(rt, owner.id, contact_id, reason, identity=("phone", phone))
    except ActionError as exc:  # two different signed-in users, say: keep them apart
        log.warning("not joining contact %s to %s by phone: %s", contact_id, owner.id, exc.message)
        return contact_id
    return owner.id


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
    good_link = True
    if msg.link_token:
        contact_id, good_link = await _link(rt, channel.value, msg, contact_id)
    if msg.shared_phone:
        contact_id = await _share_phone(rt, channel.value, contact_id, msg.shared_phone)
    attachments = await store_files(msg, contact_id) if msg.attachments else []
    text = clean_text(msg.text)  # after the files: a refused file is named in the text
    if not text.strip() and not attachments:
        if msg.link_token and good_link and await _note_link(rt, contact_id, channel):
            return Outcome(contact_id=contact_id, note="link only")
        if not msg.link_token:
            return Outcome(contact_id=contact_id, note="nothing to store")
        # A bare "/start <token>" from someone with no thread yet (or a token we refuse):
        # stored like a plain "/start", so the person who wrote shows up in the inbox.
        text = "/start"
    meta: dict[str, Any] = {"sender_id": msg.sender_id}
    if msg.subject is not None:
        meta["subject"] = msg.subject
    if msg.thread_ids:
        meta["references"] = msg.thread_ids[-20:]
    if msg.original is not None and msg.original.strip() != text.strip():
        meta["original"] = clean_text(msg.original, 100_000)
    if msg.signature:
        meta["signature"] = clean_text(msg.signature, 5_000)
    if msg.partial is not None:
        meta["partial"] = clean_text(msg.partial, 1000)
        if msg.raw is not None and len(json.dumps(msg.raw)) <= 100_000:
            meta["raw"] = msg.raw
    if not good_link:
        meta["link_refused"] = True
    stored = await do_contact_message(
        rt, contact_id, channel, text, external_id=msg.external_id, attachments=attachments,
        author_name=clean_text(msg.sender_name, 200) if msg.sender_name else name,
        channel_instance_id=instance.id, meta=meta, follow_merges=True,
    )
    if not good_link and not stored.duplicate:
        await _note_line(rt, stored.conversation.contact_id, "The contact " + BAD_LINK.format(LABEL[channel.value]))
    return Outcome(stored=stored, contact_id=contact_id, note="duplicate" if stored.duplicate else "stored")


async def _note_link(rt: Runtime, contact_id: int, channel: Channel) -> bool:
    """A bare "/start <token>": no message, but the thread says the person moved channels.
    False when the contact has no thread to say it in."""
    return await _note_line(rt, contact_id, f"The contact continued on {LABEL[channel.value]}")


async def _note_line(rt: Runtime, contact_id: int, text: str) -> bool:
    async with rt.db.write() as s:
        conv = (await s.exec(select(Conversation).where(Conversation.contact_id == contact_id)
                             .with_for_update())).first()
        if conv is None:
            return False
        line = await do_append_system_line(s, conv, text, None)
        await s.flush()
        s.publish(message_dispatches(line, conv))
    return True


async def do_foreign_reply(rt: Runtime, instance: ChannelInstance, reply: ForeignReply) -> Outcome:
    """A community admin answered in the service itself: the thread shows it as ours, so
    operators see the whole conversation. Our own replies coming back are recognised and
    skipped (by the service's idempotency key, else by their text within the hour)."""
    channel = Channel(instance.channel)
    async with rt.db.read() as s:
        known = (await s.exec(select(Message.id).where(
            Message.channel == channel, Message.external_id == reply.external_id))).first()
        contact = await find_contact(s, IdentityKind(channel.value), reply.recipient_id)
        conv = (await s.exec(select(Conversation).where(Conversation.contact_id == contact.id))).first() \
            if contact is not None else None
        if known is not None or conv is None:
            return Outcome(note="duplicate" if known is not None else "unknown person")
        if reply.key is not None:
            ours = await s.get(Message, reply.key)
            if ours is not None and ours.conversation_id == conv.id and ours.direction == Direction.outbound:
                return Outcome(contact_id=conv.contact_id, note="our own reply")
        recent = (await s.exec(select(Message.text).where(
            Message.conversation_id == conv.id, Message.channel == channel, Message.direction == Direction.outbound,
            col(Message.author_id).is_not(None), col(Message.created_at) > utcnow() - timedelta(hours=1)))).all()
        if reply.text and any(reply.text.strip() in text for text in recent):
            return Outcome(contact_id=conv.contact_id, note="our own reply")
    async with rt.db.write() as s:
        conv = await locked_conversation(s, conv.id or 0)
        message = append(s, conv, Message(
            conversation_id=conv.id or 0, seq=0, channel=channel, direction=Direction.outbound, kind=Kind.text,
            author_type=AuthorType.operator, author_id=None, author_name=clean_text(reply.author_name, 200),
            text=clean_text(reply.text) or "[message]", external_id=reply.external_id,
            delivery_state=DeliveryState.sent, channel_instance_id=instance.id, meta={"sent_outside": True}))
        await s.flush()
        s.publish(message_dispatches(message, conv))
        emit_message(s, message, conv)
    stored = Stored(message, conv)
    return Outcome(stored=stored, contact_id=conv.contact_id, note="stored")


async def do_channel_state(rt: Runtime, instance: ChannelInstance, news: ChannelState) -> Outcome:
    """The person blocked (or unblocked) us on a channel: the identity remembers it, the
    card's timeline records it, and the thread tells operators before they reply there."""
    channel = instance.channel
    state = "blocked" if news.blocked else None
    async with rt.db.write() as s:
        identity = (await s.exec(select(ContactIdentity).where(
            ContactIdentity.kind == IdentityKind(channel), ContactIdentity.value == news.sender_id)
            .with_for_update())).first()
        if identity is None or identity.state == state:
            return Outcome(note="no change")
        identity.state = state
        s.add(identity)
        s.add(Event(contact_id=identity.contact_id, name="channel_blocked" if news.blocked else "channel_unblocked",
                    properties={"channel": channel, "instance_id": instance.id}))
        conv = (await s.exec(select(Conversation).where(Conversation.contact_id == identity.contact_id)
                             .with_for_update())).first()
        if conv is not None:
            text = (f"The contact blocked us on {LABEL[channel]}: replies there will not reach them" if news.blocked
                    else f"The contact can be reached on {LABEL[channel]} again")
            line = await do_append_system_line(s, conv, text, None, "channel_blocked" if news.blocked else None)
            await s.flush()
            s.publish(message_dispatches(line, conv))
    return Outcome(contact_id=identity.contact_id, note="blocked" if news.blocked else "unblocked")
