"""Changing a contact's properties with operations (identify from the widget and the site's
backend, the admin API): applied in arrival order under the contact's lock, so two
increments at once both count; the score and the segments follow in the same transaction."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from ..behaviour.properties import OperationError, PropertyOperation, apply_operations
from ..models import Contact, Operator
from ..models.types import utcnow
from ..reads.conversation_list import list_summary
from ..runtime import Runtime
from .contact_edit import check_contact_fields
from .contacts import conversation_of
from .data_names import note_data_names, value_type
from .errors import ActionError, NotFound
from .membership import Touch
from .messages import check_can_write
from .publish import conversation_dispatch
from .scoring import react
from .validation import check_properties
from .webhook_events import emit_contact

MAX_OPERATIONS = 100


def check_operations(raw: list[Any] | None, sets: dict[str, Any] | None = None) -> list[PropertyOperation]:
    """`sets` (plain properties) become `set` operations, before the explicit ones."""
    ops: list[Any] = [{"op": "set", "key": k, "value": v} if v is not None else {"op": "unset", "key": k}
                      for k, v in (sets or {}).items()]
    ops += list(raw or [])
    if len(ops) > MAX_OPERATIONS:
        raise ActionError("too_many_operations", f"at most {MAX_OPERATIONS} property operations at once")
    parsed = []
    for n, op in enumerate(ops):
        try:
            parsed.append(op if isinstance(op, PropertyOperation) else PropertyOperation.model_validate(op))
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            raise ActionError("invalid_operation", f"operation {n + 1}: {first['msg']}") from exc
    return parsed


async def apply_in(s: AsyncSession, rt: Runtime, contact: Contact, operations: list[PropertyOperation],
                   fields: set[str] | None = None) -> set[str]:
    """Inside the caller's transaction, with `contact` read under its lock."""
    assert contact.id is not None
    try:
        props, changed = apply_operations(contact.properties, operations)
    except OperationError as exc:
        raise ActionError("wrong_property_type", str(exc)) from exc
    check_properties(props)
    now = utcnow()
    if changed:
        contact.properties = props
        s.add(contact)
        await s.flush()
        await note_data_names(s, [("property", k, value_type(props[k]), 1) for k in sorted(changed) if k in props], now)
    if fields and not changed:
        s.add(contact)
        await s.flush()
    if changed or fields:
        await react(s, rt, {contact.id: Touch(properties=changed, fields=set(fields or ()))}, now)
    return changed


async def locked_contact(s: AsyncSession, contact_id: int) -> Contact:
    contact = await s.get(Contact, contact_id, with_for_update=True)
    if contact is None:
        raise NotFound("contact_not_found", "no such contact")
    if contact.merged_into_id is not None:
        contact = await s.get(Contact, contact.merged_into_id, with_for_update=True)
        assert contact is not None
    return contact


async def do_change_properties(rt: Runtime, contact_id: int, operations: list[Any], actor: Operator | None = None,
                               name: str | None = None, email: str | None = None, phone: str | None = None) -> Contact:
    """The admin API and the site's backend (no actor) change properties by operations, and
    (the backend) name, email and phone."""
    if actor is not None:
        check_can_write(actor)
    check_contact_fields(name, email, phone)
    parsed = check_operations(operations)
    async with rt.db.write() as s:
        contact = await locked_contact(s, contact_id)
        fields: set[str] = set()
        if name is not None:
            contact.name, fields = name.strip() or None, fields | {"name"}
        if email is not None:
            contact.email, fields = email.strip().lower(), fields | {"email"}
        if phone is not None:
            contact.phone, fields = phone.strip() or None, fields | {"phone"}
        await apply_in(s, rt, contact, parsed, fields)
        emit_contact(s, "contact.updated", contact, [*fields, *(["properties"] if parsed else [])])
        conv = await conversation_of(s, contact.id or 0)
        if conv is not None:
            s.publish([conversation_dispatch(conv, contact, await list_summary(s, conv))])
    return contact
