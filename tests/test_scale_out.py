"""Two `chat-server serve` processes behind one PostgreSQL database and one Redis: a visitor on
one and an operator on the other talk as if they shared a process, and a Redis restart loses
nothing (the bus only carries news; sockets fill what they missed from the database)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

from tests.harness import METRICS_HEADERS, ChatServer, Socket, api, login, operator, visitor
from tests.services import PostgresServer, RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """This module's own Redis: it gets restarted, which other modules need not see."""
    with RedisServer(tmp_path_factory.mktemp("redis-scale")) as server:
        yield server


@pytest.fixture(scope="module")
def pair(postgres: PostgresServer, redis: RedisServer,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChatServer, ChatServer]]:
    database_url = postgres.create_database(f"scale_{uuid.uuid4().hex[:8]}")
    a = ChatServer(tmp_path_factory.mktemp("replica-a"), database_url, redis_url=redis.url)
    # The second replica must not race the first on migrations: it only serves.
    b = ChatServer(tmp_path_factory.mktemp("replica-b"), database_url, redis_url=redis.url,
                   CHAT_AUTO_MIGRATE="false")
    a.start()
    try:
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()


def cid() -> str:
    return uuid.uuid4().hex


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """Wait for state that other tasks keep (frames read, acks counted)."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - the state is plain attributes, not events
            await asyncio.sleep(0.005)


async def backfills(server: ChatServer) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(server.http + "/metrics", headers=METRICS_HEADERS)).text
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("chat_backfills_total "))


async def test_visitor_on_one_replica_and_operator_on_the_other(pair: tuple[ChatServer, ChatServer]) -> None:
    a, b = pair
    token = await login(b)
    op = await operator(b, token)
    v, _ = await visitor(a)

    await v.send(type="message.send", client_msg_id="hello-a", text="hello from replica A")
    assert (await v.expect("ack", client_msg_id="hello-a"))["seq"] == 1
    first = await op.expect("message", text="hello from replica A")
    conversation_id = first["message"]["conversation_id"]

    await op.send(type="message.send", conversation_id=conversation_id, client_msg_id="reply-b",
                  text="answer from replica B")
    await op.expect("ack", client_msg_id="reply-b")
    reply = await v.expect("message", text="answer from replica B")
    assert reply["message"]["seq"] == 2 and reply["message"]["author"]["type"] == "operator"

    await op.send(type="typing", conversation_id=conversation_id, is_typing=True)
    assert (await v.expect("typing"))["author"] == {"type": "operator", "id": None, "name": "Admin"}
    await v.send(type="typing", is_typing=True)
    contact_id = first["message"]["author"]["id"]
    typing = await op.expect("typing", author={"type": "contact", "id": contact_id, "name": None})  # not its own
    assert typing["conversation_id"] == conversation_id and typing["is_typing"] is True

    await op.send(type="message.send", conversation_id=conversation_id, client_msg_id="note-b",
                  text="private: VIP, do not promise a refund", kind="note")
    await op.expect("ack", client_msg_id="note-b")
    notes = [f for f in op.seen if f["type"] == "message" and f["message"]["kind"] == "note"]
    note = notes[0] if notes else await op.expect("message", kind="note")  # it may come before the ack
    assert note["message"]["seq"] == 3 and note["message"]["public_seq"] is None  # staff see it
    await op.send(type="message.send", conversation_id=conversation_id, client_msg_id="reply-b2",
                  text="anything else?")
    after_note = await v.expect("message", text="anything else?")
    assert after_note["message"]["seq"] == 3  # the note took no place in the visitor's numbering
    frames = v.seen + await v.settled()
    assert not any("VIP" in str(f) for f in frames)
    await v.close()
    await op.close()


class Client:
    """One socket, read by a background task: message frames kept in arrival order, acks by id."""

    def __init__(self, sock: Socket) -> None:
        self.sock = sock
        self.messages: list[dict[str, Any]] = []
        self.acks: dict[str, dict[str, Any]] = {}

    async def read(self) -> None:
        while True:
            frame = await self.sock.recv(30)
            if frame["type"] == "message":
                self.messages.append(frame["message"])
            elif frame["type"] == "ack":
                self.acks[frame["client_msg_id"]] = frame

    async def send(self, **frame: Any) -> None:
        client_msg_id = cid()
        await self.sock.send(type="message.send", client_msg_id=client_msg_id, **frame)
        await until(lambda: client_msg_id in self.acks, 10)

    async def wait_for(self, count: int, seconds: float) -> None:
        await until(lambda: len(self.messages) >= count, seconds)


async def test_redis_restart_mid_conversation_loses_and_doubles_nothing(
    pair: tuple[ChatServer, ChatServer], redis: RedisServer,
) -> None:
    a, b = pair
    token = await login(b)
    inbox = Client(await operator(b, token))
    widget_sock, welcome = await visitor(a)
    widget = Client(widget_sock)
    sent_by_visitor = 30
    sent_by_operator = 8
    fills_before = {"a": await backfills(a), "b": await backfills(b)}

    async with anyio.create_task_group() as readers:
        readers.start_soon(inbox.read)
        readers.start_soon(widget.read)
        await widget.send(text="start")
        await inbox.wait_for(1, 5)  # the inbox holds the thread before the trouble starts
        conversation_id = inbox.messages[0]["conversation_id"]

        async def visitor_writes() -> None:
            for i in range(sent_by_visitor):
                await widget.send(text=f"visitor {i}")
                await asyncio.sleep(0.03)

        async def operator_writes() -> None:
            for i in range(sent_by_operator):
                await inbox.send(conversation_id=conversation_id, text=f"operator {i}")
                await asyncio.sleep(0.1)

        async def redis_goes_away() -> None:
            await until(lambda: len(widget.acks) >= 10, 10)
            await anyio.to_thread.run_sync(redis.stop)

        # Redis goes away mid-run; the rest of the run happens without it: each replica hears
        # only its own news, and nothing comes after to reveal the holes.
        with anyio.fail_after(30):
            async with anyio.create_task_group() as writers:
                writers.start_soon(visitor_writes)
                writers.start_soon(operator_writes)
                writers.start_soon(redis_goes_away)
        await anyio.to_thread.run_sync(redis.start)
        total = 1 + sent_by_visitor + sent_by_operator
        # Both replicas resubscribe and fill what pub/sub lost from the database.
        await inbox.wait_for(total, 15)
        await widget.wait_for(total, 15)
        # And the bus carries news between the replicas again.
        await widget.send(text="back to normal")
        await inbox.send(conversation_id=conversation_id, text="indeed")
        total += 2
        await inbox.wait_for(total, 5)
        await widget.wait_for(total, 5)
        await asyncio.sleep(0.5)  # anything doubled would have arrived by now
        readers.cancel_scope.cancel()

    # Each replica noticed the lost subscription and checked the database for what it missed.
    assert await backfills(a) > fills_before["a"] and await backfills(b) > fills_before["b"]
    assert "redis subscription lost" in a.logs() and "redis subscription lost" in b.logs()
    async with api(b, token) as http:
        r = await http.get(f"/conversations/{conversation_id}/messages", params={"limit": "200"})
        stored = [m["text"] for m in r.json()["items"]]
    assert len(stored) == total
    assert [m["text"] for m in inbox.messages] == stored
    assert [m["seq"] for m in inbox.messages] == list(range(1, total + 1))
    assert [m["text"] for m in widget.messages] == stored
    assert [m["seq"] for m in widget.messages] == list(range(1, total + 1))
    assert [t for t in stored if t.startswith("visitor")] == [f"visitor {i}" for i in range(sent_by_visitor)]

    # Resume works across replicas too: the widget comes back on B from where it had shown,
    # the inbox on A from its cursor.
    await widget.sock.close()
    await inbox.sock.close()
    v2, _ = await visitor(b, token=welcome["token"], last_seq=10)
    op2 = await operator(a, token, cursors={conversation_id: {"seq": 20, "epoch": 1}})
    for sock, after in ((v2, 10), (op2, 20)):
        got = [(await sock.expect("message"))["message"]["text"] for _ in range(total - after)]
        assert got == stored[after:]
        assert not [f for f in await sock.settled() if f["type"] == "message"]
        await sock.close()
