"""News of a write leaves only after its commit, and never after a rollback (db.py's unit of
work); nothing but the unit of work and the typing action hands news to the bus."""

from __future__ import annotations

import ast
import asyncio
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import event, text
from sqlmodel import select

from chat_server.actions.contacts import find_or_create_contact
from chat_server.actions.conversations import do_set_status
from chat_server.actions.messages import do_contact_message, do_send_operator_message
from chat_server.actions.operators import do_create_operator
from chat_server.actions.typing import do_contact_typing
from chat_server.bus import CHANNEL, Audience, Dispatch, DispatchKind, RedisBus
from chat_server.models import Channel, ChannelInstance, IdentityKind, Message, Operator, Role, Status
from chat_server.realtime.connection import Connection
from chat_server.runtime import Runtime
from chat_server.settings import Settings
from tests.inprocess import RecordingBus, make_runtime, runtime_for
from tests.services import RedisServer

pytestmark = pytest.mark.anyio

PACKAGE = Path(__file__).resolve().parent.parent / "chat_server"


class Boom(Exception):
    pass


async def a_contact(runtime: Runtime, name: str) -> int:
    async with runtime.db.write() as s:
        contact, _ = await find_or_create_contact(s, IdentityKind.visitor, name, "test")
    assert contact.id is not None
    return contact.id


async def an_operator(runtime: Runtime) -> Operator:
    return await do_create_operator(runtime, "Olga", "olga@example.com", "long password", Role.operator)


class CommitCheckingBus(RecordingBus):
    """At each publication, looks from a fresh session whether the messages it announces are
    there to be read, and whether the database takes another write (SQLite's one writer is free)."""

    def __init__(self) -> None:
        super().__init__()
        self.runtime: Runtime | None = None
        self.visible: list[bool] = []
        self.publications = 0

    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        assert self.runtime is not None
        self.publications += 1
        async with self.runtime.db.read() as s:
            for d in dispatches:
                if d.kind is DispatchKind.message and d.audience.roles:
                    found = (await s.exec(select(Message.id).where(
                        Message.conversation_id == d.conversation_id, Message.seq == d.seq))).first()
                    self.visible.append(found is not None)
        async with asyncio.timeout(10), self.runtime.db.write() as s:
            await s.exec(text("SELECT 1"))  # type: ignore[call-overload]
        await super().publish(dispatches)


async def test_news_goes_out_after_the_commit_with_the_rows_visible(db_url: str) -> None:
    await make_runtime(db_url)  # migrated
    bus = CommitCheckingBus()
    runtime = bus.runtime = runtime_for(Settings(database_url=db_url, secret_key="test"), bus)
    try:
        operator = await an_operator(runtime)
        contacts = [await a_contact(runtime, f"v{i}") for i in range(6)]
        # Contacts' messages arriving together: group commit, one publication per batch.
        stored = await asyncio.gather(*(do_contact_message(runtime, c, Channel.widget, "hello") for c in contacts))
        conv_id = stored[0].conversation.id
        assert conv_id is not None
        await do_send_operator_message(runtime, operator, conv_id, "hi there")
        await do_set_status(runtime, operator, conv_id, Status.closed)  # a system line
        assert len(bus.visible) == 6 + 1 + 1
        assert all(bus.visible), bus.visible
        assert bus.publications < 6 + 2  # the batch's news left together, not message by message
    finally:
        await runtime.db.dispose()


async def test_a_rolled_back_write_publishes_nothing(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    news = Dispatch(DispatchKind.message, Audience(contact_ids=(1,)), "{}")
    ran: list[str] = []
    with pytest.raises(Boom):
        async with runtime.db.write() as s:
            s.publish([news])
            s.on_commit(lambda: ran.append("hook"))
            raise Boom
    assert bus.published == [] and ran == []
    async with runtime.db.write() as s:
        s.publish([news])
        s.on_commit(lambda: ran.append("hook"))
        assert bus.published == []  # not before the commit
    assert bus.published == [news] and ran == ["hook"]


@pytest.fixture
def failing_commits(rt: tuple[Runtime, RecordingBus]) -> Iterator[list[bool]]:
    """While the list holds True, every commit of the write engine fails."""
    runtime, _ = rt
    fail: list[bool] = []

    def on_commit(conn: object) -> None:
        if fail and fail[0]:
            raise Boom("the database went away")

    engine = runtime.db.write_engine.sync_engine
    event.listen(engine, "commit", on_commit)
    yield fail
    event.remove(engine, "commit", on_commit)


async def test_an_action_whose_commit_fails_tells_nobody(rt: tuple[Runtime, RecordingBus],
                                                         failing_commits: list[bool]) -> None:
    runtime, bus = rt
    operator = await an_operator(runtime)
    contact = await a_contact(runtime, "v")
    first = await do_contact_message(runtime, contact, Channel.widget, "hello")
    conv_id = first.conversation.id
    assert conv_id is not None
    bus.published.clear()

    failing_commits.append(True)
    with pytest.raises(Boom):
        await do_send_operator_message(runtime, operator, conv_id, "never stored")
    with pytest.raises(Boom):
        await do_contact_message(runtime, contact, Channel.widget, "never stored either")
    assert bus.published == []
    async with runtime.db.read() as s:
        assert (await s.exec(select(Message.text).where(Message.conversation_id == conv_id))).all() == ["hello"]

    failing_commits[0] = False
    reply = await do_send_operator_message(runtime, operator, conv_id, "stored")
    assert [(d.kind, d.seq) for d in bus.published if d.audience.roles] == [(DispatchKind.message, reply.message.seq)]


async def test_a_queued_reply_wakes_the_outbound_worker_on_commit_only(
    rt: tuple[Runtime, RecordingBus], failing_commits: list[bool]
) -> None:
    runtime, _ = rt
    operator = await an_operator(runtime)
    contact = await a_contact(runtime, "v")
    async with runtime.db.write() as s:
        instance = ChannelInstance(channel="telegram", name="bot", config={})
        s.add(instance)
    first = await do_contact_message(runtime, contact, Channel.telegram, "hi", external_id="1",
                                     channel_instance_id=instance.id)
    conv_id = first.conversation.id
    assert conv_id is not None
    queued = runtime.outbound_queued

    await do_send_operator_message(runtime, operator, conv_id, "a note", note=True)
    assert not queued.is_set()  # nothing to send
    failing_commits.append(True)
    with pytest.raises(Boom):
        await do_send_operator_message(runtime, operator, conv_id, "rolled back")
    assert not queued.is_set()  # no job exists to be sent
    failing_commits[0] = False
    reply = await do_send_operator_message(runtime, operator, conv_id, "goes out now")
    assert reply.message.channel == Channel.telegram and queued.is_set()


def _uses(attribute: str, receiver_suffix: str = "") -> Iterator[tuple[str, str, bool]]:
    """(module, line and expression, whether it is called) for each `<...receiver>.attribute`."""
    for path in PACKAGE.rglob("*.py"):
        name = str(path.relative_to(PACKAGE))
        tree = ast.parse(path.read_text())
        called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == attribute \
                    and ast.unparse(node.value).endswith(receiver_suffix):
                yield name, f"{name}:{node.lineno} {ast.unparse(node)}", id(node) in called


def test_only_the_unit_of_work_and_typing_hand_news_to_the_bus() -> None:
    publishes = [(where, called) for _, where, called in _uses("publish", "bus")]
    # The one call on the bus is typing's; every other action registers its news on the write
    # session (s.publish), which hands it over after its commit.
    assert [where.split(":")[0] for where, called in publishes if called] == ["actions/typing.py"] * 2, publishes
    # The bus's publish is handed to the database (the unit of work) where the runtime is wired.
    assert sorted(where.split(":")[0] for where, called in publishes if not called) == ["app.py", "cli.py"]
    # Nobody else gets at the bus to publish on it some other way.
    assert {module for module, _, _ in _uses("bus")} <= {"app.py", "api/ops.py", "actions/typing.py"}


async def test_typing_has_no_transaction_and_says_what_it_is(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    await do_contact_typing(runtime, 7, 3, True)
    [news] = bus.published
    assert news.kind is DispatchKind.typing and news.seq is None  # nothing to resume: no place in a thread
    assert json.loads(news.frame) == {"type": "typing", "conversation_id": 3,
                                      "author": {"type": "contact", "id": 7, "name": None}, "is_typing": True}


class Heard:
    def __init__(self) -> None:
        self.dispatches: list[Dispatch] = []
        self.resyncs = 0
        self.arrived = asyncio.Event()

    def dispatch(self, dispatches: Sequence[Dispatch]) -> None:
        self.dispatches.extend(dispatches)
        self.arrived.set()

    def resync(self) -> None:
        self.resyncs += 1


async def test_a_dispatch_keeps_its_kind_through_redis_and_bad_news_is_survived(redis_server: RedisServer) -> None:
    bus, heard = RedisBus(redis_server.url), Heard()
    await bus.start([heard])
    raw = aioredis.from_url(redis_server.url)
    try:
        # Say, a process of an older version: what it sends cannot be read.
        await raw.publish(CHANNEL, json.dumps([{"a": [[], [], [], True], "f": "{}"}]))
        presence = Dispatch(DispatchKind.presence, Audience(all_visitors=True), '{"type":"presence"}')
        await bus.publish([presence])
        await asyncio.wait_for(heard.arrived.wait(), 10)
        assert heard.resyncs == 1  # what was derived from the lost news is looked up again
        [got] = heard.dispatches
        assert got.kind is DispatchKind.presence and got.audience == presence.audience and got.frame == presence.frame
    finally:
        await raw.aclose()
        await bus.stop()


async def test_a_failing_backfill_is_logged_before_the_socket_closes(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(conn: Connection, conversation_id: int, after: int) -> list[tuple[int, str]]:
        raise ConnectionError("database unreachable")

    conn = Connection("visitor", 10, contact_id=1)
    with caplog.at_level(logging.ERROR, "chat_server.realtime.connection"):
        conn.start_fill(5, 2, [], broken)
        await asyncio.wait_for(asyncio.gather(*conn._tasks), 10)
    assert conn.closed  # the socket is told to stop
    assert conn.close_code == 1011
    [record] = caplog.records
    assert "conversation 5" in record.getMessage() and record.exc_info is not None
    assert isinstance(record.exc_info[1], ConnectionError)
