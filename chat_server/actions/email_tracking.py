"""What a reader of an automatic email does with its links: opening it (the pixel), following
a link, unsubscribing. Each is recorded once per message as the contact's
`triggered_message_read` / `_clicked` / `_unsubscribed` event (property `message_id`) through
the tracking pipeline, whose event ids make a second open store nothing."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from ..automatic_email import Purpose, is_automatic_email, language, read
from ..models import Contact, Conversation, Message, Unsubscribe
from ..runtime import Runtime
from .errors import ActionError, NotFound
from .tracking import TrackItem, do_track


@dataclass
class Target:
    """The automatic email a token names, and whom it went to."""

    message_id: int
    contact_id: int
    email: str
    lang: str
    site: str
    url: str | None = None


async def _target(rt: Runtime, purpose: Purpose, token: str) -> Target:
    found = read(rt.settings.effective_secret_key, purpose, token)
    if found is None:
        raise ActionError("invalid_token", "this link is damaged or was not made by this server")
    message_id, url = found
    async with rt.db.read() as s:
        row = (await s.exec(
            select(Message, Conversation.contact_id).join(Conversation, Conversation.id == Message.conversation_id)  # type: ignore[arg-type]
            .where(Message.id == message_id))).first()
        contact = await s.get(Contact, row[1]) if row is not None else None
    if row is None or contact is None or not is_automatic_email(row[0]):
        raise NotFound("message_not_found", "the message this link belongs to no longer exists")
    m = row[0]
    lang = language(m.meta.get("lang") or contact.properties.get("language"))
    return Target(message_id, row[1], str(m.meta.get("to") or contact.email or ""), lang,
                  str(m.meta.get("site") or ""), url)


async def _record(rt: Runtime, target: Target, what: str) -> None:
    await do_track(rt, [TrackItem(target.contact_id, f"triggered_message_{what}", {"message_id": target.message_id},
                                  external_id=f"automatic-email:{what}:{target.message_id}")])


async def do_record_open(rt: Runtime, token: str) -> None:
    await _record(rt, await _target(rt, "open", token), "read")


async def do_record_click(rt: Runtime, token: str) -> str:
    """Records the click; returns where the link leads (an http/https address it was signed with)."""
    target = await _target(rt, "click", token)
    await _record(rt, target, "clicked")
    assert target.url is not None
    return target.url


async def unsubscribe_target(rt: Runtime, token: str) -> Target:
    """Whom the unsubscribe page speaks to (changes nothing: link scanners fetch pages)."""
    return await _target(rt, "unsubscribe", token)


async def do_unsubscribe(rt: Runtime, token: str) -> Target:
    """No more automatic emails to this contact; recorded once, however often it is asked."""
    target = await _target(rt, "unsubscribe", token)
    added = False
    async with rt.db.write() as s:
        existing = (await s.exec(select(Unsubscribe).where(
            Unsubscribe.contact_id == target.contact_id, Unsubscribe.channel == "email"))).first()
        if existing is None:
            try:
                async with s.begin_nested():
                    s.add(Unsubscribe(contact_id=target.contact_id, channel="email", message_id=target.message_id))
                added = True
            except IntegrityError:  # the one-click POST and the page raced: one row is enough
                added = False
    if added:
        await _record(rt, target, "unsubscribed")
    return target
