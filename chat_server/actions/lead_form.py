"""The lead-capture form of a proactive popup card: the visitor's answer lands on the card
(email unverified, as a left address is; phone as the visitor's own identify would set it),
and is recorded once as the contact's `lead_form_submitted` event (message_id, field)."""

from __future__ import annotations

import re

from sqlmodel import select

from ..models import Conversation, Kind, Message
from ..runtime import Runtime
from .errors import ActionError, NotFound
from .identify import check_identity, do_identify, do_leave_email
from .tracking import TrackItem, do_track

_PHONE = re.compile(r"^\+?[0-9 ()\-.]{5,30}$")


async def _form_of(rt: Runtime, contact_id: int, message_id: int) -> str:
    async with rt.db.read() as s:
        row = (await s.exec(
            select(Message, Conversation.contact_id).join(Conversation, Conversation.id == Message.conversation_id)  # type: ignore[arg-type]
            .where(Message.id == message_id))).first()
    form = row[0].meta.get("form") if row is not None and row[0].kind == Kind.automatic else None
    if row is None or row[1] != contact_id or not isinstance(form, dict):
        raise NotFound("message_not_found", "no form with this message id was shown to you")
    return str(form["field"])


async def do_submit_lead_form(rt: Runtime, contact_id: int, message_id: int, value: str) -> str:
    """Returns the field that was filled in ("email" or "phone")."""
    field = await _form_of(rt, contact_id, message_id)
    value = value.strip()
    if field == "email":
        check_identity(None, value, None, None, {})
        await do_leave_email(rt, contact_id, value)
    else:
        digits = sum(ch.isdigit() for ch in value)
        if not _PHONE.match(value) or not 5 <= digits <= 20:
            raise ActionError("invalid_phone", "that is not a phone number")
        await do_identify(rt, contact_id, phone=value)
    await do_track(rt, [TrackItem(contact_id, "lead_form_submitted", {"message_id": message_id, "field": field},
                                  external_id=f"lead-form:{message_id}")])
    return field
