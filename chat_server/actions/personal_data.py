"""A person's right to know what is stored about them and to have it deleted.

Both follow `reads.personal_data.owned_keys`, which finds every row of the person by the
schema's foreign keys, so export and deletion always cover the same rows. Only admins do
either; both leave an audit record saying who and when, never what.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlmodel.ext.asyncio.session import AsyncSession

from ..attachments import safe_name
from ..bus import Dispatch, DispatchKind
from ..frames import ConversationRemovedFrame
from ..models import AuditRecord, Contact, Operator, Role
from ..models.types import utcnow
from ..reads.personal_data import delete_order, key_of, owned_keys, owned_rows, paths_still_used
from ..runtime import Runtime
from .access import visitor_token_revoked
from .errors import Forbidden, NotFound
from .publish import STAFF


def check_admin(actor: Operator) -> None:
    if actor.role != Role.admin:
        raise Forbidden("admin_only", "only admins may export or delete a person's data")


async def _person(s: Any, contact_id: int) -> int:
    """The contact to act on: a contact merged away is part of the one it was merged into."""
    contact = await s.get(Contact, contact_id)
    for _ in range(10):  # merges chain at most a few times; never loop on bad data
        if contact is None:
            raise NotFound("not_found", "no such contact")
        if contact.merged_into_id is None:
            return int(contact.id)
        contact = await s.get(Contact, contact.merged_into_id)
    raise NotFound("not_found", "no such contact")


async def do_export_contact(rt: Runtime, actor: Operator, contact_id: int) -> Path:
    """A zip archive: `contact.json` (every row, table by table) and the files the person
    sent or was sent under `files/`. The caller removes the file when it has been handed over."""
    check_admin(actor)
    async with rt.db.write() as s:
        person = await _person(s, contact_id)
        keys = await owned_keys(s, person)
        tables = await owned_rows(s, keys)
        s.add(AuditRecord(operator_id=actor.id, action="contact_exported", subject_id=person,
                          rows=sum(len(rows) for rows in tables.values())))
    files = [(a["id"], f"files/{a['id']}-{safe_name(a['name'])}", a["path"]) for a in tables.get("attachment", [])]
    document = {"exported_at": utcnow().isoformat(), "contact_id": person, "tables": tables,
                "files": [{"attachment_id": a["id"], "name": a["name"], "file": entry}
                          for a, (_, entry, _) in zip(tables.get("attachment", []), files, strict=True)]}
    fd, name = tempfile.mkstemp(prefix="contact-export-", suffix=".zip")
    os.close(fd)
    # One file in memory at a time, fetched from the store; disk and compression on a thread.
    archive = await asyncio.to_thread(zipfile.ZipFile, name, "w", zipfile.ZIP_DEFLATED)
    try:
        text = json.dumps(document, ensure_ascii=False, indent=2)
        await asyncio.to_thread(archive.writestr, "contact.json", text)
        for _, entry, key in files:
            data = await rt.files.get(key)
            if data is not None:  # a file lost from the store is still listed in contact.json
                await asyncio.to_thread(archive.writestr, entry, data)
    finally:
        await asyncio.to_thread(archive.close)
    return Path(name)


async def do_delete_contact(rt: Runtime, actor: Operator, contact_id: int) -> dict[str, int]:
    """Delete the person and everything of theirs, in one transaction; then the files no other
    upload shares. Returns how many rows went, per table."""
    check_admin(actor)
    async with rt.db.write() as s:
        person = await _person(s, contact_id)
        keys = await owned_keys(s, person)
        identities = (await owned_rows(s, {"contact_identity": keys.get("contact_identity", set())})).get("contact_identity", [])
        counts, orphaned = await delete_reached(s, keys)
        s.add(AuditRecord(operator_id=actor.id, action="contact_deleted", subject_id=person, rows=sum(counts.values())))
        s.publish(removed_conversations(keys))
        # Their widgets still open close at once (on every process); their tokens name an
        # identity that no longer exists, so a reconnect starts a new, empty visitor.
        s.publish([visitor_token_revoked(person, i["value"]) for i in identities if i["kind"] == "visitor"])
    # Only now, committed, are the rows that named these files gone for good.
    await rt.files.delete(orphaned)
    return counts


async def delete_reached(s: AsyncSession, keys: dict[str, set[Any]]) -> tuple[dict[str, int], set[str]]:
    """Delete the rows `reads.personal_data.reached_keys` found (what points at a row goes
    first). Returns the rows deleted per table and the stored files no upload uses any more."""
    attachments = await owned_rows(s, {"attachment": keys.get("attachment", set())})
    paths = {a["path"] for a in attachments.get("attachment", [])}
    conn = await s.connection()
    for table in delete_order():
        wanted = sorted(keys.get(table.name, set()), key=str)
        for start in range(0, len(wanted), 500):
            await conn.execute(delete(table).where(key_of(table).in_(wanted[start:start + 500])))
    counts = {name: len(values) for name, values in sorted(keys.items()) if values}
    return counts, paths - await paths_still_used(s, paths)


def removed_conversations(keys: dict[str, set[Any]]) -> list[Dispatch]:
    return [
        Dispatch(DispatchKind.conversation_removed, STAFF,
                 ConversationRemovedFrame(conversation_id=conversation_id, merged_into_conversation_id=None).model_dump_json())
        for conversation_id in sorted(keys.get("conversation", set()))
    ]
