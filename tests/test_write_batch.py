"""A batch write in one transaction: its statements and commit in one hand-off to SQLite's
driver thread, its news only after the commit, nothing of it after an error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlmodel import col, select

from chat_server.actions.contacts import find_or_create_contact
from chat_server.actions.messages import do_contact_message
from chat_server.bus import Audience, Dispatch, DispatchKind
from chat_server.db import WriteSession
from chat_server.models import Channel, Contact, IdentityKind
from chat_server.runtime import Runtime
from tests.inprocess import QueryCounter, RecordingBus, make_runtime

pytestmark = pytest.mark.anyio


class Failed(Exception):
    pass


def news(contact_id: int) -> Dispatch:
    return Dispatch(DispatchKind.presence, Audience(contact_ids=(contact_id,)), "{}")


async def names(runtime: Runtime) -> list[str | None]:
    async with runtime.db.read() as s:
        return list((await s.exec(select(Contact.name).order_by(col(Contact.id)))).all())


async def test_a_batch_commits_then_publishes_and_an_error_leaves_nothing(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt

    async def add(s: WriteSession, name: str, fail: bool) -> int:
        contact, _ = await find_or_create_contact(s, IdentityKind.visitor, name, "test", name=name)
        assert contact.id is not None
        s.publish([news(contact.id)])
        assert bus.published == []  # not before the commit
        if fail:
            raise Failed(name)
        return contact.id

    with pytest.raises(Failed):
        await runtime.db.write_batch(lambda s: add(s, "lost", True))
    assert await names(runtime) == [] and bus.published == []

    first = await runtime.db.write_batch(lambda s: add(s, "kept", False))
    assert await names(runtime) == ["kept"]
    assert [d.audience.contact_ids for d in bus.published] == [(first,)]


@pytest.fixture
async def sqlite_rt(tmp_path: Path) -> AsyncIterator[tuple[Runtime, RecordingBus]]:
    runtime, bus = await make_runtime(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
    yield runtime, bus
    await runtime.db.dispose()


async def test_a_batch_of_messages_is_one_hand_off_to_the_sqlite_driver(
    sqlite_rt: tuple[Runtime, RecordingBus], monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime, _bus = sqlite_rt
    counter = QueryCounter(runtime.db)
    contacts = []
    async with runtime.db.write() as s:
        for i in range(10):
            contact, _ = await find_or_create_contact(s, IdentityKind.visitor, f"v{i}", "test")
            contacts.append(contact.id or 0)
    for c in contacts:
        await do_contact_message(runtime, c, Channel.widget, "first", client_msg_id="first")
    async with runtime.db.write() as s:
        writer = (await (await s.connection()).get_raw_connection()).driver_connection
    hand_offs: list[object] = []
    execute = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        hand_offs.append(self)
        return await execute(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    counter.reset()

    stored = await asyncio.gather(*(
        do_contact_message(runtime, c, Channel.widget, f"{c}-{k}", client_msg_id=f"m{k}")
        for k in (1, 2) for c in contacts
    ))

    assert len(stored) == 20
    transactions = sum(1 for s in counter.statements if s.upper().startswith("BEGIN"))
    assert 1 <= transactions <= 3  # the first message alone, the rest together
    # Before: ~16 per transaction (cursor, execute, fetch, close for each statement, commit, rollback).
    assert sum(1 for conn in hand_offs if conn is writer) == transactions


async def test_a_batch_that_waits_on_anything_else_is_refused_and_leaves_nothing(
    sqlite_rt: tuple[Runtime, RecordingBus],
) -> None:
    runtime, bus = sqlite_rt

    async def sleeps(s: WriteSession) -> None:
        await find_or_create_contact(s, IdentityKind.visitor, "v", "test", name="never")
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="awaited something other than its session's database work"):
        await runtime.db.write_batch(sleeps)
    assert await names(runtime) == [] and bus.published == []

    async def fine(s: WriteSession) -> None:
        await find_or_create_contact(s, IdentityKind.visitor, "v", "test", name="stored")

    await runtime.db.write_batch(fine)  # the connection is whole again
    assert await names(runtime) == ["stored"]
