"""A person's right to know what is stored about them and to have it deleted.

Both follow `reads.personal_data.owned_keys`, which finds every row of the person by the
schema's foreign keys, so export and deletion always cover the same rows. Only admins do
either; both leave an audit record saying who and when, never what.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlmodel.ext.asyncio.session import AsyncSession

from ..attachments import safe_name, storage_for
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
    storage = storage_for(rt.settings)
    files = [(a["id"], a["name"], storage.open_path(a["path"])) for a in tables.get("attachment", [])]
    document = {"exported_at": utcnow().isoformat(), "contact_id": person, "tables": tables,
                "files": [{"attachment_id": i, "name": n, "file": f"files/{i}-{safe_name(n)}"} for i, n, _ in files]}
    return await asyncio.to_thread(_write_archive, document, files)


def _write_archive(document: dict[str, Any], files: list[tuple[int, str, Path]]) -> Path:
    fd, name = tempfile.mkstemp(prefix="contact-export-", suffix=".zip")
    with open(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("contact.json", json.dumps(document, ensure_ascii=False, indent=2))
        for ident, filename, path in files:
            if path.exists():  # a file lost from disk is still listed in contact.json
                archive.write(path, f"files/{ident}-{safe_name(filename)}")
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
        s.on_commit(lambda: remove_files(rt, orphaned))
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


def remove_files(rt: Runtime, paths: set[str]) -> None:
    """Run after the commit (`on_commit`): only then are the rows that named these files gone
    for good."""
    storage = storage_for(rt.settings)
    for path in paths:
        storage.open_path(path).unlink(missing_ok=True)


def removed_conversations(keys: dict[str, set[Any]]) -> list[Dispatch]:
    return [
        Dispatch(DispatchKind.conversation_removed, STAFF,
                 ConversationRemovedFrame(conversation_id=conversation_id, merged_into_conversation_id=None).model_dump_json())
        for conversation_id in sorted(keys.get("conversation", set()))
    ]
