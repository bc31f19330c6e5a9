"""A server restart loses nothing that was acknowledged and doubles nothing that is resent.

Real `chat-server serve` processes on SQLite and PostgreSQL, stopped with SIGTERM the way a
process manager stops them, started again on the same port and database.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import websockets

from tests.harness import ChatServer, Socket, api, login, operator, visitor

pytestmark = pytest.mark.anyio


async def read_until_closed(sock: Socket, seconds: float = 15.0) -> tuple[list[dict[str, Any]], int | None]:
    """Every frame still on its way, then the close code the client received (None: dropped)."""
    frames: list[dict[str, Any]] = []
    try:
        while True:
            frames.append(await sock.recv(seconds))
    except websockets.ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd is not None else None


async def messages(sock: Socket, count: int, seconds: float = 10.0) -> list[dict[str, Any]]:
    """The message frames this socket has received (those skipped by `expect` too), once there
    are `count` of them."""
    with anyio.fail_after(seconds):
        while len(got := [f["message"] for f in sock.seen if f["type"] == "message"]) < count:
            await sock.recv(seconds)
    return got


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """Wait for state that other tasks keep (frames read, acks counted)."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - the state is plain attributes, not events
            await asyncio.sleep(0.005)


async def no_more_messages(sock: Socket) -> None:
    extra = [f for f in await sock.settled() if f["type"] == "message"]
    assert not extra, f"resent after resume: {extra}"


async def test_sigterm_closes_sockets_with_1001_and_resume_gives_exactly_the_missed(
    db_url: str, tmp_path: Path,
) -> None:
    server = ChatServer(tmp_path, db_url)
    server.start()
    try:
        token = await login(server)
        op = await operator(server, token)
        v, welcome = await visitor(server)

        await v.send(type="message.send", client_msg_id="v1", text="v1")
        await v.expect("ack", client_msg_id="v1")
        conversation_id = (await op.expect("message", text="v1"))["message"]["conversation_id"]
        await op.send(type="message.send", conversation_id=conversation_id, client_msg_id="r1", text="r1")
        await op.expect("ack", client_msg_id="r1")
        await op.send(type="message.send", conversation_id=conversation_id, client_msg_id="n1", text="n1", kind="note")
        await op.expect("ack", client_msg_id="n1")
        await v.send(type="message.send", client_msg_id="v2", text="v2")
        await v.expect("ack", client_msg_id="v2")
        # What each client has shown so far: its cursor when it comes back.
        assert [m["seq"] for m in await messages(v, 3)] == [1, 2, 3]
        visitor_last_seq = 3
        assert [m["text"] for m in await messages(op, 4)] == ["v1", "r1", "n1", "v2"]
        operator_cursor = 4

        # Acknowledged, but never shown by the clients before the stop (in flight, say).
        await v.send(type="message.send", client_msg_id="v3", text="v3")
        await v.expect("ack", client_msg_id="v3")
        async with api(server, token) as http:
            thread = f"/conversations/{conversation_id}"
            assert (await http.post(f"{thread}/messages", json={"text": "r2"})).status_code == 201
            assert (await http.post(f"{thread}/notes", json={"text": "n2"})).status_code == 201

        # SIGTERM while both sockets are open: each is told "going away", the process exits 0.
        async with anyio.create_task_group() as tg:
            closes: dict[str, int | None] = {}

            async def watch(name: str, sock: Socket) -> None:
                closes[name] = (await read_until_closed(sock))[1]

            tg.start_soon(watch, "visitor", v)
            tg.start_soon(watch, "operator", op)
            assert await anyio.to_thread.run_sync(server.stop, signal.SIGTERM) == 0
        assert closes == {"visitor": 1001, "operator": 1001}, server.logs()[-3000:]

        server.start()  # same port, same database
        async with api(server, token) as http:
            # Written while the clients are still away: they must get it on resume as well.
            assert (await http.post(f"{thread}/messages", json={"text": "r3"})).status_code == 201
            history = (await http.get(f"{thread}/messages")).json()["items"]
        assert [(m["seq"], m["text"]) for m in history] == [
            (1, "v1"), (2, "r1"), (3, "n1"), (4, "v2"), (5, "v3"), (6, "r2"), (7, "n2"), (8, "r3")]

        v2, welcome2 = await visitor(server, token=welcome["token"], last_seq=visitor_last_seq)
        assert welcome2["visitor_id"] == welcome["visitor_id"]
        assert [(m["seq"], m["text"]) for m in await messages(v2, 3)] == [(4, "v3"), (5, "r2"), (6, "r3")]
        await no_more_messages(v2)

        op2 = await operator(server, token, cursors={conversation_id: {"seq": operator_cursor, "epoch": 1}})
        assert [(m["seq"], m["text"]) for m in await messages(op2, 4)] == [
            (5, "v3"), (6, "r2"), (7, "n2"), (8, "r3")]
        await no_more_messages(op2)
        await v2.close()
        await op2.close()
    finally:
        server.stop()


class ResilientVisitor:
    """A widget that sends its messages in order and keeps each until it is acknowledged:
    on a dropped socket it reconnects with backoff, resumes, and resends (same client_msg_id)
    everything not acknowledged yet."""

    def __init__(self, server: ChatServer, texts: list[str], window: int = 3) -> None:
        self.server = server
        self.outbox = [(f"msg-{i}", text) for i, text in enumerate(texts)]
        self.acked: dict[str, int] = {}  # client_msg_id -> message id
        self.shown: list[dict[str, Any]] = []  # message frames, in the order the widget showed them
        self.token: str | None = None
        self.window = window  # messages sent ahead of their acknowledgement
        self.reconnects = 0
        self.duplicates = 0

    @property
    def last_seq(self) -> int:
        return self.shown[-1]["seq"] if self.shown else 0

    async def run(self) -> None:
        backoff = 0.05
        while len(self.acked) < len(self.outbox):
            try:
                sock, welcome = await visitor(self.server, token=self.token, last_seq=self.last_seq)
            except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed, TimeoutError):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            self.token = welcome["token"]
            try:
                await self._session(sock)
            except websockets.ConnectionClosed:
                self.reconnects += 1
            finally:
                await sock.close()

    async def _session(self, sock: Socket) -> None:
        pending = [m for m in self.outbox if m[0] not in self.acked]
        in_flight: list[str] = []
        while pending or in_flight:
            while pending and len(in_flight) < self.window:
                client_msg_id, text = pending.pop(0)
                await sock.send(type="message.send", client_msg_id=client_msg_id, text=text)
                in_flight.append(client_msg_id)
                await asyncio.sleep(0.01)  # a person types; the restart lands mid-conversation
            frame = await sock.recv(10)
            if frame["type"] == "ack":
                assert frame["client_msg_id"] == in_flight.pop(0)  # answered in the order sent
                self.acked[frame["client_msg_id"]] = frame["message_id"]
                self.duplicates += frame["duplicate"]
            elif frame["type"] == "message":
                self.show(frame["message"])
        # Our own last messages come back through the fan-out after their acks.
        while self.last_seq < len(self.outbox):
            frame = await sock.recv(10)
            if frame["type"] == "message":
                self.show(frame["message"])

    def show(self, message: dict[str, Any]) -> None:
        assert message["seq"] == self.last_seq + 1, f"gap or repeat: {message['seq']} after {self.last_seq}"
        self.shown.append(message)


class FollowingOperator:
    """An inbox that follows one conversation through reconnects, resuming by cursor."""

    def __init__(self, server: ChatServer, token: str) -> None:
        self.server = server
        self.token = token
        self.conversation_id: int | None = None
        self.shown: list[dict[str, Any]] = []
        self.closes: list[int | None] = []

    async def run(self, until: int) -> None:
        backoff = 0.05
        while len(self.shown) < until:
            cursors = {self.conversation_id: {"seq": len(self.shown), "epoch": 1}} if self.conversation_id else {}
            try:
                sock = await operator(self.server, self.token, cursors)
            except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed, TimeoutError):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            try:
                while len(self.shown) < until:
                    frame = await sock.recv(15)
                    if frame["type"] == "message":
                        self.show(frame["message"])
            except websockets.ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd is not None else None)
            finally:
                await sock.close()

    def show(self, message: dict[str, Any]) -> None:
        self.conversation_id = message["conversation_id"]
        assert message["seq"] == len(self.shown) + 1, f"gap or repeat: {message['seq']} after {len(self.shown)}"
        self.shown.append(message)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_restart_while_a_visitor_keeps_sending_loses_and_doubles_nothing(db_url: str, tmp_path: Path, how: int) -> None:
    """A graceful stop, or a crash: whatever was acknowledged was committed first, and whatever
    was not is sent again by the client and recognised by its id."""
    server = ChatServer(tmp_path, db_url)
    server.start()
    count = 30
    texts = [f"message {i} " + "x" * i for i in range(count)]
    try:
        token = await login(server)
        widget = ResilientVisitor(server, texts)
        inbox = FollowingOperator(server, token)

        async def restart_mid_conversation() -> None:
            await until(lambda: len(widget.acked) >= 8, 30)
            await anyio.to_thread.run_sync(server.stop, how)
            await anyio.to_thread.run_sync(server.start)

        with anyio.fail_after(45):
            async with anyio.create_task_group() as tg:
                tg.start_soon(inbox.run, count)
                await asyncio.sleep(0.2)  # the inbox is open before the first message
                tg.start_soon(widget.run)
                tg.start_soon(restart_mid_conversation)

        assert widget.reconnects >= 1 and inbox.closes, "the restart did not happen mid-run"
        if how == signal.SIGTERM:
            assert 1001 in inbox.closes  # told it is going away; a killed server tells nothing
        # Every message stored once, in the visitor's order; both sides saw each exactly once.
        async with api(server, token) as http:
            assert inbox.conversation_id is not None
            r = await http.get(f"/conversations/{inbox.conversation_id}/messages", params={"limit": "200"})
            stored = r.json()["items"]
        assert [m["client_msg_id"] for m in stored] == [f"msg-{i}" for i in range(count)]
        assert [m["text"] for m in stored] == texts
        assert [m["seq"] for m in stored] == list(range(1, count + 1))
        assert sorted(widget.acked.values()) == [m["id"] for m in stored]
        assert [m["text"] for m in widget.shown] == texts
        assert [m["text"] for m in inbox.shown] == texts
    finally:
        server.stop()
