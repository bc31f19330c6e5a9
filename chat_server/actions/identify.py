"""identify(): the site tells who its visitor is. With an identity secret configured, a
user_id or email must come with user_hash = HMAC-SHA256(secret, user_id or email) to attach
the visitor to a known contact; a valid identify with a known identity merges the anonymous
visitor into that contact (the merge rules of actions/merge.py)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from ..models import Contact, ContactIdentity, Conversation, IdentityKind
from ..reads.conversation_list import list_summary
from ..runtime import Runtime
from .contacts import find_contact, get_contact
from .errors import ActionError, Conflict, Forbidden
from .merge import do_merge_contacts
from .operators import EMAIL_RE
from .properties import apply_in, check_operations, locked_contact
from .publish import conversation_dispatch
from .site import get_site
from .validation import check_properties, check_storable
from .webhook_events import emit_contact


@dataclass
class Identified:
    contact_id: int
    merged: bool


def user_hash(secret: str, key: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def check_identity(user_id: str | None, email: str | None, name: str | None, phone: str | None,
                   properties: dict[str, Any]) -> tuple[str | None, str | None]:
    if user_id is not None:
        user_id = check_storable(user_id.strip(), "user_id")
        if not 1 <= len(user_id) <= 200:
            raise ActionError("invalid_user_id", "user_id is 1 to 200 characters")
    if email is not None:
        email = check_storable(email.strip().lower(), "email")
        if not EMAIL_RE.match(email) or len(email) > 320:
            raise ActionError("invalid_email", "that is not an email address")
    for value, field, limit in ((name, "name", 200), (phone, "phone", 50)):
        if value is not None and len(check_storable(value, field)) > limit:
            raise ActionError(f"invalid_{field}", f"{field} is at most {limit} characters")
    check_properties(properties)
    return user_id, email


async def do_identify(
    rt: Runtime, contact_id: int, *, user_id: str | None = None, email: str | None = None,
    name: str | None = None, phone: str | None = None, properties: dict[str, Any] | None = None,
    hash_given: str | None = None, operations: list[Any] | None = None,
) -> Identified:
    properties = properties or {}
    user_id, email = check_identity(user_id, email, name, phone, properties)
    ops = check_operations(operations, properties)
    key = user_id or email
    secret = (await get_site(rt)).identity_secret
    if key is not None and secret:
        if not hash_given or not hmac.compare_digest(user_hash(secret, key), hash_given.strip().lower()):
            raise Forbidden("invalid_user_hash", "identify needs user_hash = HMAC-SHA256(secret, user_id or email)")
    claims = [(IdentityKind.user_id, user_id), (IdentityKind.email, email)]
    owner: Contact | None = None
    via: tuple[str, str] | None = None
    async with rt.db.read() as s:
        for kind, value in claims:
            if value is not None and owner is None:
                owner = await find_contact(s, kind, value)
                via = (kind.value, value)
    merged = False
    if owner is not None and owner.id != contact_id:
        assert owner.id is not None
        try:
            await do_merge_contacts(rt, owner.id, contact_id, "identified by the site", identity=via)
        except Conflict as exc:
            raise Conflict("different_user",
                           "this visitor is signed in as another user; call shutdown() first") from exc
        contact_id, merged = owner.id, True
    async with rt.db.write() as s:
        contact = await locked_contact(s, contact_id)
        for kind, value in claims:
            if value is None:
                continue
            try:
                async with s.begin_nested():
                    s.add(ContactIdentity(kind=kind, value=value, contact_id=contact_id, linked_reason="identify"))
                    await s.flush()
            except IntegrityError:
                pass  # this contact has it already, or another contact does: leave it there
        fields = {f for f, v in (("name", name), ("email", email), ("phone", phone)) if v is not None}
        if name is not None:
            contact.name = name
        if email is not None:
            contact.email = email
        if phone is not None:
            contact.phone = phone
        s.add(contact)
        await s.flush()
        await apply_in(s, rt, contact, ops, fields)
        if fields or ops:
            emit_contact(s, "contact.updated", contact, [*fields, *(["properties"] if ops else [])])
        conv = (await s.exec(select(Conversation).where(Conversation.contact_id == contact_id))).first()
        if conv is not None:
            s.publish([conversation_dispatch(conv, contact, await list_summary(s, conv))])
    return Identified(contact_id, merged)


async def do_leave_email(rt: Runtime, contact_id: int, email: str) -> None:
    """A visitor left an address to be answered at (no operator was online). Typed by the
    visitor, so unverified: it goes on their own card and joins no other contact."""
    _, checked = check_identity(None, email, None, None, {})
    assert checked is not None
    async with rt.db.write() as s:
        contact = await get_contact(s, contact_id)
        contact.email = checked
        contact.properties = {**contact.properties, "email_unverified": True}
        s.add(contact)
        await s.flush()
        emit_contact(s, "contact.updated", contact, ["email", "properties"])
        conv = (await s.exec(select(Conversation).where(Conversation.contact_id == contact_id))).first()
        if conv is not None:
            s.publish([conversation_dispatch(conv, contact, await list_summary(s, conv))])
