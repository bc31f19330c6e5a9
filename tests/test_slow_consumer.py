"""A client that stops reading is cut off; it neither grows the server's memory nor slows the
others down."""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import websockets

from tests.harness import ChatServer, Socket, check_frame, login, metric, operator, visitor

pytestmark = pytest.mark.anyio

MESSAGES = 300
TEXT_SIZE = 10_000  # the largest message a visitor may send


def noise(size: int) -> str:
    """Random CJK text: three bytes a character, so the bytes really pile up."""
    return "".join(chr(c) for c in random.choices(range(0x4E00, 0x9FFF), k=size))


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)) / 1024


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """Wait for state that other tasks keep (frames read, acks counted)."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - the state is plain attributes, not events
            await asyncio.sleep(0.005)


async def stalled_operator(server: ChatServer, token: str) -> Any:
    """An inbox whose tab froze: the client library stops reading after one frame, and a small
    receive buffer keeps the kernel from soaking up megabytes on its behalf. Uncompressed, so
    what the server sends it is what piles up in the server's buffers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    ws = await websockets.connect(server.ws + "/ws/inbox", sock=sock, max_queue=1, max_size=2**22,
                                  ping_interval=None, compression=None)
    await ws.send(json.dumps({"type": "hello", "token": token, "cursors": {}}))
    assert check_frame(await ws.recv())["type"] == "welcome"
    return ws


async def test_stalled_operator_is_cut_off_and_the_others_get_everything(tmp_path: Path) -> None:
    server = ChatServer(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", CHAT_SEND_QUEUE_FRAMES="20")
    server.start()
    try:
        assert server.proc is not None
        token = await login(server)
        stalled = await stalled_operator(server, token)
        reader = await operator(server, token)
        v, _ = await visitor(server)
        pid = server.proc.pid
        rss_before = rss_peak = rss_mb(pid)
        received: list[dict[str, Any]] = []
        acks: list[dict[str, Any]] = []

        async def read_all(sock: Socket) -> None:
            while len(received) < MESSAGES:
                frame = await sock.recv(10)
                if frame["type"] == "message":
                    received.append(frame["message"])

        def acked(count: int) -> Callable[[], bool]:
            return lambda: len(acks) >= count

        async def visitor_reads() -> None:
            while len(acks) < MESSAGES:
                frame = await v.recv(10)
                if frame["type"] == "ack":
                    acks.append(frame)

        async def watch_memory() -> None:
            nonlocal rss_peak
            while len(received) < MESSAGES:
                rss_peak = max(rss_peak, rss_mb(pid))
                await asyncio.sleep(0.1)

        with anyio.fail_after(25):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_all, reader)
                tg.start_soon(visitor_reads)
                tg.start_soon(watch_memory)
                for sent in range(1, MESSAGES + 1):
                    text = f"{sent - 1:04d} " + noise(TEXT_SIZE - 5)
                    await v.send(type="message.send", client_msg_id=f"big-{sent}", text=text)
                    await until(acked(sent - 10), 10)  # a few in flight, as a paste key does

        # The reading operator got every message, in order, with no gap and nothing twice.
        assert [m["seq"] for m in received] == list(range(1, MESSAGES + 1))
        assert [m["text"][:4] for m in received] == [f"{i:04d}" for i in range(MESSAGES)]
        assert all(len(m["text"]) == TEXT_SIZE for m in received)
        # The server did not keep the stalled socket's backlog (300 x 30 KB were sent to it).
        assert rss_peak - rss_before < 200, (rss_before, rss_peak)

        # The stalled one was counted and dropped from the fan-out...
        with anyio.fail_after(10):
            while True:
                slow = await metric(server, "chat_slow_consumers_total")
                if slow >= 1 and await metric(server, "chat_open_sockets", kind="operator") == 1:
                    break
                await asyncio.sleep(0.1)
        # ...and when the tab wakes up it finds what was already on the wire, then the end:
        # 1013 (try again later) or a dropped connection, either way it resumes by cursor.
        got = 0
        with anyio.fail_after(10):
            try:
                while True:
                    frame = check_frame(await stalled.recv())
                    got += frame["type"] == "message"
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
        assert code in (1013, None)
        assert got < MESSAGES
        await v.close()
        await reader.close()
    finally:
        server.stop()


async def test_a_client_that_stops_reading_is_cut_off_after_the_send_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its queue never fills (the limit is far away), yet frames the client has not taken for
    SEND_TIMEOUT end it; the reading sockets keep getting everything meanwhile."""
    from chat_server.realtime import socket as plumbing
    from tests.appserver import AppServer

    monkeypatch.setattr(plumbing, "SEND_TIMEOUT", 1.0)
    async with AppServer(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", send_queue_frames=100_000) as app:
        server: Any = app  # the same .port/.ws/.http as a ChatServer
        token = await login(server)
        stalled = await stalled_operator(server, token)
        reader = await operator(server, token)
        v, _ = await visitor(server)
        sent = 0
        # Loopback's kernel buffers soak up a few megabytes before a send has to wait.
        with anyio.fail_after(60):
            while await metric(server, "chat_open_sockets", kind="operator") == 2:
                sent += 1
                await v.send(type="message.send", client_msg_id=f"big-{sent}", text=noise(TEXT_SIZE))
                await v.expect("ack")
                frame = await reader.expect("message")
                assert frame["message"]["seq"] == sent
        assert await metric(server, "chat_slow_consumers_total") == 1
        with anyio.fail_after(10):
            try:
                while True:
                    await stalled.recv()
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
        assert code in (1013, None)
        await v.close()
        await reader.close()
