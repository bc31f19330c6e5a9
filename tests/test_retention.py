"""Retention: old behaviour events and long-closed conversations are pruned in batches."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from chat_server.actions import retention
from chat_server.actions.attachments import do_store_attachment
from chat_server.actions.messages import do_contact_message
from chat_server.actions.retention import do_prune_closed_conversations, do_prune_events
from chat_server.file_store import LocalFileStore
from chat_server.models import Attachment, Channel, Contact, Conversation, Event, Message, Status
from chat_server.models.types import utcnow
from chat_server.runtime import Runtime
from tests.inprocess import RecordingBus

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x07" * 64


def with_retention(runtime: Runtime, tmp_path: Path, **days: int) -> Runtime:
    settings = runtime.settings.model_copy(update={"attachments_dir": tmp_path / "files", **days})
    return replace(runtime, settings=settings, files=LocalFileStore(settings.effective_attachments_dir))


async def test_old_events_go_in_batches_and_new_ones_stay(rt: tuple[Runtime, RecordingBus], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = with_retention(rt[0], tmp_path, event_retention_days=30)
    monkeypatch.setattr(retention, "EVENT_BATCH", 7)  # several batches, each its own transaction
    now = utcnow()
    async with runtime.db.write() as s:
        contact = Contact(name="Kept")
        s.add(contact)
        await s.flush()
        for k in range(25):
            s.add(Event(contact_id=contact.id, name="page_viewed", occurred_at=now - timedelta(days=31 + k)))
        for k in range(3):
            s.add(Event(contact_id=contact.id, name="page_viewed", occurred_at=now - timedelta(days=29 - k)))
    assert await do_prune_events(runtime, now) == 25
    async with runtime.db.read() as s:
        left = (await s.exec(select(Event.occurred_at).where(Event.contact_id == contact.id))).all()
        assert len(left) == 3 and all(now - when < timedelta(days=30) for when in left)
        assert await s.get(Contact, contact.id) is not None
    assert await do_prune_events(runtime, now) == 0
    off = with_retention(rt[0], tmp_path)  # 0: kept for ever
    assert await do_prune_events(off, now + timedelta(days=10_000)) == 0


async def test_long_closed_conversations_go_with_their_messages_and_files(rt: tuple[Runtime, RecordingBus], tmp_path: Path) -> None:
    runtime, bus = rt
    runtime = with_retention(runtime, tmp_path, closed_conversation_retention_days=365)
    now = utcnow()
    threads = {}
    for name in ("old closed", "old open", "recent closed"):
        async with runtime.db.write() as s:
            contact = Contact(name=name)
            s.add(contact)
            await s.flush()
            assert contact.id is not None
        stored = await do_contact_message(runtime, contact.id, Channel.widget, f"hello from {name}", client_msg_id="1")
        threads[name] = (contact.id, stored.conversation.id)
    old_id = threads["old closed"][0]
    attachment = await do_store_attachment(runtime, PNG, "a.png", "image/png", contact_id=old_id)
    await do_contact_message(runtime, old_id, Channel.widget, "", client_msg_id="2", attachments=[attachment])
    async with runtime.db.write() as s:
        for name, (_, conversation_id) in threads.items():
            conv = await s.get(Conversation, conversation_id)
            assert conv is not None
            conv.status = Status.open if name == "old open" else Status.closed
            conv.last_activity_at = now - timedelta(days=400 if name.startswith("old") else 10)
            s.add(conv)
    file = runtime.settings.effective_attachments_dir / (await _attachment_path(runtime, attachment["id"]))
    assert file.exists()
    bus.published.clear()

    assert await do_prune_closed_conversations(runtime, now) == 1
    async with runtime.db.read() as s:
        remaining = set((await s.exec(select(Conversation.id))).all())
        assert remaining == {threads["old open"][1], threads["recent closed"][1]}
        gone = threads["old closed"][1]
        assert (await s.exec(select(func.count()).select_from(Message).where(Message.conversation_id == gone))).one() == 0
        assert (await s.exec(select(func.count()).select_from(Attachment).where(col(Attachment.contact_id) == old_id))).one() == 0
        assert await s.get(Contact, old_id) is not None  # the card stays
    assert not file.exists()
    assert [json.loads(d.frame) for d in bus.published] == [
        {"type": "conversation.removed", "conversation_id": gone, "merged_into_conversation_id": None}]
    # The person writes again: a new thread, numbered from 1.
    again = await do_contact_message(runtime, old_id, Channel.widget, "me again", client_msg_id="3")
    assert again.conversation.id != gone and again.message.seq == 1


async def _attachment_path(runtime: Runtime, attachment_id: int) -> str:
    async with runtime.db.read() as s:
        row = await s.get(Attachment, attachment_id)
        assert row is not None
        return row.path
