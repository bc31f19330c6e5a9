"""Contacts' messages that arrive together are written together, and still one by one in effect."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import col, select

from chat_server.actions.contacts import find_or_create_contact
from chat_server.actions.messages import do_contact_message
from chat_server.group_commit import GroupCommit
from chat_server.models import Channel, Conversation, IdentityKind, Message
from chat_server.runtime import Runtime
from tests.inprocess import QueryCounter, RecordingBus

pytestmark = pytest.mark.anyio


async def visitors(runtime: Runtime, n: int) -> list[int]:
    ids = []
    async with runtime.db.write() as s:
        for i in range(n):
            contact, _ = await find_or_create_contact(s, IdentityKind.visitor, f"v{i}", "test")
            assert contact.id is not None
            ids.append(contact.id)
    return ids


def work(counter: QueryCounter) -> list[str]:
    return [s for s in counter.statements if not s.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"))]


async def test_messages_arriving_together_cost_one_batch(counted_rt: tuple[Runtime, RecordingBus, QueryCounter]) -> None:
    runtime, bus, counter = counted_rt
    contacts = await visitors(runtime, 10)
    for c in contacts:  # every contact has a conversation already
        await do_contact_message(runtime, c, Channel.widget, "first", client_msg_id="first")
    counter.reset()
    bus.published.clear()

    # Two messages per contact, all at once.
    stored = await asyncio.gather(*(
        do_contact_message(runtime, c, Channel.widget, f"{c}-{k}", client_msg_id=f"m{k}")
        for k in (1, 2) for c in contacts
    ))

    assert len(work(counter)) == 3, work(counter)  # lock, insert, update: for the whole batch
    assert [s.message.text for s in stored] == [f"{c}-{k}" for k in (1, 2) for c in contacts]
    assert all(not s.duplicate for s in stored)
    async with runtime.db.read() as s:
        for c in contacts:
            conv = (await s.exec(select(Conversation).where(Conversation.contact_id == c))).one()
            rows = (await s.exec(select(Message).where(Message.conversation_id == conv.id).order_by(col(Message.seq)))).all()
            assert [(m.seq, m.public_seq, m.text) for m in rows] == [(1, 1, "first"), (2, 2, f"{c}-1"), (3, 3, f"{c}-2")]
            assert (conv.last_seq, conv.last_public_seq, conv.last_inbound_seq) == (3, 3, 3)
            assert conv.last_activity_at == rows[-1].created_at
    # Each message is published once, to staff and to its contact, in thread order.
    staff_seqs = [(d.conversation_id, d.seq) for d in bus.published if d.audience.roles]
    assert len(staff_seqs) == 20
    for conv_id in {c for c, _ in staff_seqs}:
        assert [seq for c, seq in staff_seqs if c == conv_id] == [2, 3]


async def test_a_retry_in_a_batch_does_not_fail_its_neighbours(counted_rt: tuple[Runtime, RecordingBus, QueryCounter]) -> None:
    runtime, _bus, _counter = counted_rt
    a, b, c = await visitors(runtime, 3)
    first = await do_contact_message(runtime, a, Channel.widget, "hello", client_msg_id="same")

    results = await asyncio.gather(
        do_contact_message(runtime, b, Channel.widget, "from b", client_msg_id="b1"),
        do_contact_message(runtime, a, Channel.widget, "hello", client_msg_id="same"),  # a resend after reconnect
        do_contact_message(runtime, c, Channel.widget, "from c", client_msg_id="c1"),
    )

    assert [r.duplicate for r in results] == [False, True, False]
    assert results[1].message.id == first.message.id
    async with runtime.db.read() as s:
        texts = sorted((await s.exec(select(Message.text))).all())
    assert texts == ["from b", "from c", "hello"]


async def test_new_and_closed_conversations_in_one_batch(counted_rt: tuple[Runtime, RecordingBus, QueryCounter]) -> None:
    runtime, bus, _counter = counted_rt
    old, new = await visitors(runtime, 2)
    await do_contact_message(runtime, old, Channel.widget, "earlier", client_msg_id="e")
    async with runtime.db.write() as s:
        conv = (await s.exec(select(Conversation).where(Conversation.contact_id == old))).one()
        conv.status = "closed"  # type: ignore[assignment]
        s.add(conv)
    bus.published.clear()

    await asyncio.gather(
        do_contact_message(runtime, old, Channel.widget, "back again", client_msg_id="b"),
        do_contact_message(runtime, new, Channel.widget, "first words", client_msg_id="f"),
        do_contact_message(runtime, new, Channel.widget, "second words", client_msg_id="s"),
    )

    async with runtime.db.read() as s:
        convs = {c.contact_id: c for c in (await s.exec(select(Conversation))).all()}
    assert convs[old].status == "open" and convs[old].last_seq == 2
    assert convs[new].status == "open" and convs[new].last_seq == 2
    # The inbox hears of each changed conversation once, before its messages.
    kinds = [d.frame.split('"', 4)[3] for d in bus.published if d.audience.roles]
    assert kinds.count("conversation.updated") == 2
    assert kinds.index("conversation.updated") < kinds.index("message")


async def test_group_commit_writes_what_waits_together_and_isolates_failures() -> None:
    batches: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.01)
        if 13 in items:
            raise ValueError("unlucky")
        return [i * 10 for i in items]

    commit: GroupCommit[int, int] = GroupCommit(write, max_batch=4)
    results = await asyncio.gather(*(commit.submit(i) for i in range(1, 7)), commit.submit(13), return_exceptions=True)

    assert results[:6] == [10, 20, 30, 40, 50, 60]
    assert isinstance(results[6], ValueError)
    assert batches[0] == [1, 2, 3, 4]  # what waited went together, at most max_batch at a time
    assert [5, 6, 13] in batches and [5] in batches and [6] in batches and [13] in batches  # retried alone


async def test_group_commit_runs_up_to_workers_batches_at_once() -> None:
    running = peak = 0

    async def write(items: list[int]) -> list[int]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return items

    commit: GroupCommit[int, int] = GroupCommit(write, max_batch=2, workers=3)
    assert await asyncio.gather(*(commit.submit(i) for i in range(12))) == list(range(12))
    assert peak == 3
