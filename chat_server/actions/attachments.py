"""Attachments: record an upload, let a message carry it, decide who may download it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..attachments import AttachmentRejected, check_file, safe_name
from ..models import Attachment, Conversation
from ..models.ids import MAX_ROW_ID
from ..models.types import utcnow
from ..runtime import Runtime
from .errors import ActionError, NotFound, TooMany

MAX_PER_MESSAGE = 10


def attachment_dict(a: Attachment) -> dict[str, Any]:
    """What `Message.attachments` stores and both sides are sent."""
    assert a.id is not None
    return {"id": a.id, "name": a.name, "content_type": a.content_type, "size": a.size,
            "url": f"/api/v1/attachments/{a.id}/{quote(a.name, safe='')}"}


async def do_store_attachment(
    rt: Runtime, data: bytes, filename: str, content_type: str, *,
    contact_id: int | None = None, operator_id: int | None = None,
) -> dict[str, Any]:
    if (contact_id is None) == (operator_id is None):
        raise ActionError("invalid_owner", "an attachment belongs to exactly one contact or operator")
    try:
        kind = check_file(data, content_type, rt.settings.max_attachment_bytes)
    except AttachmentRejected as exc:
        raise ActionError(exc.code, exc.message) from exc
    if contact_id is not None:
        await check_upload_rate(rt, contact_id)
    # Stored before the row: a row never names a file that is not there. A file whose row
    # never commits is an orphan under its hash, shared harmlessly by a later identical upload.
    stored = await rt.files.put(data, kind)
    async with rt.db.write() as s:
        row = Attachment(sha256=stored.sha256, name=safe_name(filename), content_type=kind, size=stored.size,
                         path=stored.path, contact_id=contact_id, operator_id=operator_id)
        s.add(row)
        await s.flush()
    return attachment_dict(row)


async def check_upload_rate(rt: Runtime, contact_id: int) -> None:
    """Counted in the database, so the limit holds across replicas and restarts."""
    limit = rt.settings.visitor_uploads_per_hour
    if limit <= 0:
        return
    async with rt.db.read() as s:
        recent = (await s.exec(select(func.count()).select_from(Attachment).where(
            col(Attachment.contact_id) == contact_id, col(Attachment.created_at) > utcnow() - timedelta(hours=1)))).one()
    if recent >= limit:
        async with rt.db.read() as s:
            oldest = (await s.exec(select(func.min(Attachment.created_at)).where(
                col(Attachment.contact_id) == contact_id, col(Attachment.created_at) > utcnow() - timedelta(hours=1)))).one()
        wait = (oldest + timedelta(hours=1) - utcnow()).total_seconds() if oldest else 60
        raise TooMany("rate_limited", f"at most {limit} files an hour; try again later", max(1, int(wait) + 1))


async def resolve_attachments(
    rt: Runtime, ids: list[int], *, contact_id: int | None = None, staff: bool = False,
) -> list[dict[str, Any]]:
    """The attachments a new message may carry: a contact only their own uploads, staff only
    uploads by staff. Anything else is refused as if it did not exist."""
    if not ids:
        return []
    if len(ids) > MAX_PER_MESSAGE:
        raise ActionError("too_many_attachments", f"a message carries at most {MAX_PER_MESSAGE} attachments")
    wanted = list(dict.fromkeys(ids))
    if any(not 0 < ident <= MAX_ROW_ID for ident in wanted):
        raise NotFound("attachment_not_found", "no such attachment")
    async with rt.db.read() as s:
        rows = {a.id: a for a in (await s.exec(select(Attachment).where(col(Attachment.id).in_(wanted)))).all()}
    result = []
    for ident in wanted:
        row = rows.get(ident)
        mine = row is not None and (
            (staff and row.operator_id is not None) or (contact_id is not None and row.contact_id == contact_id)
        )
        if row is None or not mine:
            raise NotFound("attachment_not_found", f"no attachment {ident} of yours")
        result.append(attachment_dict(row))
    return result


async def bind_attachments(s: AsyncSession, conversation_id: int, attachments: list[dict[str, Any]]) -> None:
    """The contact of this conversation may now download these files (they are in their thread)."""
    ids = [a["id"] for a in attachments if isinstance(a.get("id"), int)]
    if not ids:
        return
    rows = (await s.exec(select(Attachment).where(col(Attachment.id).in_(ids)))).all()
    for row in rows:
        if row.conversation_id is None:
            row.conversation_id = conversation_id
            s.add(row)


async def readable_attachment(rt: Runtime, attachment_id: int, *, staff: bool = False,
                              contact_id: int | None = None) -> Attachment:
    """Staff read every file; a contact reads what they uploaded and what was sent to them."""
    if not 0 < attachment_id <= MAX_ROW_ID:
        raise NotFound("attachment_not_found", "no such attachment")
    async with rt.db.read() as s:
        row = await s.get(Attachment, attachment_id)
        allowed = row is not None and staff
        if row is not None and not allowed and contact_id is not None:
            allowed = row.contact_id == contact_id
            if not allowed and row.conversation_id is not None:
                conv = await s.get(Conversation, row.conversation_id)
                allowed = conv is not None and conv.contact_id == contact_id
    if row is None or not allowed:
        raise NotFound("attachment_not_found", "no such attachment")
    return row
