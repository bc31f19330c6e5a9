"""A server restart loses nothing that was acknowledged and doubles nothing that is resent.

Real `chat-server serve` processes on SQLite and PostgreSQL, stopped with SIGTERM the way a
process manager stops them, started again on the same port and database.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest
import websockets

from tests.harness import ChatServer, Socket, api, login, operator, visitor
from tests.resilient_clients import FollowingOperator, ResilientVisitor, until

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
