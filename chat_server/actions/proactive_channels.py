"""What an automatic message needs before it can leave on email, Telegram or VK: a reachable
contact (an address, not blocked, not unsubscribed), a configured channel to send through,
and for email the subject, address, language and sender the composer uses at send time."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from ..automatic_email import language
from ..models import Channel, Contact, Conversation, SiteSettings
from ..reads.reach import reach_of, reachable
from .errors import ActionError
from .outbound import reply_instance
from .site import SITE_ID
from .validation import check_storable

MAX_SUBJECT = 200


def check_subject(subject: str | None) -> str | None:
    if subject is None:
        return None
    subject = check_storable(subject.strip(), "subject")
    if len(subject) > MAX_SUBJECT or "\n" in subject or "\r" in subject:
        raise ActionError("invalid_subject", f"a subject is one line of at most {MAX_SUBJECT} characters")
    return subject or None


async def check_reachable(s: AsyncSession, contact_id: int, channel: str) -> str | None:
    """Raises `unreachable` with the reason; returns the email address for email."""
    reach = await reach_of(s, contact_id)
    if channel in reach.unsubscribed:
        raise ActionError("unreachable", f"the contact unsubscribed from automatic {channel} messages")
    if channel in reach.blocked:
        raise ActionError("unreachable", f"the contact blocked us on {channel}")
    if not reachable(reach, channel):
        raise ActionError("unreachable", f"the contact has no {channel} address")
    return reach.email if channel == "email" else None


async def prepare_channel_send(s: AsyncSession, conv: Conversation, channel: str,
                               subject: str | None) -> tuple[int, dict[str, Any]]:
    """(the channel instance to send through, the message's meta) or `unreachable`."""
    address = await check_reachable(s, conv.contact_id, channel)
    instance_id = await reply_instance(s, conv, Channel(channel))
    if instance_id is None:
        raise ActionError("unreachable", f"no {channel} channel is configured")
    if channel != "email":
        return instance_id, {}
    contact = await s.get(Contact, conv.contact_id)
    site = await s.get(SiteSettings, SITE_ID)
    props = contact.properties if contact is not None else {}
    return instance_id, {"to": address, "subject": subject, "lang": language(props.get("language")),
                         "site": site.name if site is not None and site.name else ""}
