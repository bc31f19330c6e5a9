"""Operators correct a contact's card: name, email, phone and the editable properties."""

from __future__ import annotations

from typing import Any

from ..models import Contact, Operator
from ..models.types import utcnow
from ..reads.conversation_list import list_summary
from ..runtime import Runtime
from .contacts import conversation_of, get_contact
from .errors import ActionError
from .membership import Touch
from .messages import check_can_write
from .operators import EMAIL_RE
from .publish import conversation_dispatch
from .scoring import react
from .validation import check_properties, check_storable
from .webhook_events import emit_contact

_UNSET: Any = object()


def check_contact_fields(name: str | None, email: str | None, phone: str | None) -> None:
    if name is not None and len(check_storable(name, "name")) > 200:
        raise ActionError("invalid_name", "a name is at most 200 characters")
    if email is not None and email != "" and (not EMAIL_RE.match(check_storable(email, "email")) or len(email) > 320):
        raise ActionError("invalid_email", "that is not an email address")
    if phone is not None and (len(check_storable(phone, "phone")) > 50):
        raise ActionError("invalid_phone", "a phone number is at most 50 characters")


async def do_update_contact(
    rt: Runtime, actor: Operator, contact_id: int, *, name: Any = _UNSET, email: Any = _UNSET,
    phone: Any = _UNSET, properties: dict[str, Any] | None = None,
) -> Contact:
    """Fields given replace the card's (None or "" clears them); `properties` is merged key
    by key and a key set to null is removed. Sales accounts read cards but never change them."""
    check_can_write(actor)
    name = None if name in ("", None) else name
    email = None if email in ("", None) else email
    phone = None if phone in ("", None) else phone
    check_contact_fields(None if name is _UNSET else name, None if email is _UNSET else email,
                         None if phone is _UNSET else phone)
    async with rt.db.write() as s:
        contact = await get_contact(s, contact_id)
        if contact.merged_into_id is not None:
            raise ActionError("contact_merged", f"this contact was merged into #{contact.merged_into_id}")
        if name is not _UNSET:
            contact.name = name.strip() if name else None
        if email is not _UNSET:
            contact.email = email.strip().lower() if email else None
        if phone is not _UNSET:
            contact.phone = phone.strip() if phone else None
        if properties:
            merged = dict(contact.properties)
            for key, value in properties.items():
                check_storable(key, "property name")
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            contact.properties = check_properties(merged)
        s.add(contact)
        await s.flush()
        fields = {n for n, v in (("name", name), ("email", email), ("phone", phone)) if v is not _UNSET}
        await react(s, rt, {contact_id: Touch(properties=set(properties or {}), fields=fields)}, utcnow())
        emit_contact(s, "contact.updated", contact, [*fields, *(["properties"] if properties else [])])
        conv = await conversation_of(s, contact_id)
        if conv is not None:
            # The inbox list shows name, email and phone: every open inbox gets the new ones.
            s.publish([conversation_dispatch(conv, contact, await list_summary(s, conv))])
    return contact
