"""Saved replies: admins keep the team's canned answers; everyone who answers reads them."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError

from ..models import Operator, Role, SavedReply
from ..models.types import utcnow
from ..runtime import Runtime
from .errors import ActionError, Conflict, Forbidden, NotFound
from .validation import check_text

SHORTCUT_RE = re.compile(r"^[\w.-]{1,50}$")


def check_can_manage_replies(actor: Operator) -> None:
    if actor.role != Role.admin:
        raise Forbidden("admin_only", "only admins manage saved replies")


def check_shortcut(shortcut: str) -> str:
    shortcut = shortcut.strip().lstrip("/").lower()
    if not SHORTCUT_RE.match(shortcut):
        raise ActionError("invalid_shortcut", "a shortcut is 1 to 50 letters, digits, '_', '.' or '-'")
    return shortcut


async def do_create_saved_reply(rt: Runtime, actor: Operator, shortcut: str, text: str) -> SavedReply:
    check_can_manage_replies(actor)
    reply = SavedReply(shortcut=check_shortcut(shortcut), text=check_text(text), created_by_id=actor.id)
    try:
        async with rt.db.write() as s:
            s.add(reply)
    except IntegrityError as exc:
        raise Conflict("shortcut_taken", f"/{reply.shortcut} is already a saved reply") from exc
    return reply


async def do_update_saved_reply(
    rt: Runtime, actor: Operator, reply_id: int, shortcut: str | None, text: str | None
) -> SavedReply:
    check_can_manage_replies(actor)
    new_shortcut = check_shortcut(shortcut) if shortcut is not None else None
    new_text = check_text(text) if text is not None else None
    try:
        async with rt.db.write() as s:
            reply = await s.get(SavedReply, reply_id)
            if reply is None:
                raise NotFound("saved_reply_not_found", "no such saved reply")
            if new_shortcut is not None:
                reply.shortcut = new_shortcut
            if new_text is not None:
                reply.text = new_text
            reply.updated_at = utcnow()
            s.add(reply)
    except IntegrityError as exc:
        raise Conflict("shortcut_taken", f"/{new_shortcut} is already a saved reply") from exc
    return reply


async def do_delete_saved_reply(rt: Runtime, actor: Operator, reply_id: int) -> None:
    check_can_manage_replies(actor)
    async with rt.db.write() as s:
        reply = await s.get(SavedReply, reply_id)
        if reply is None:
            raise NotFound("saved_reply_not_found", "no such saved reply")
        await s.delete(reply)
