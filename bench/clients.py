"""Load generator roles. Each runs in its own process (see procs.Generators) and speaks the
widget/inbox protocol (docs/protocol.md); the bare reference relay speaks the same subset, so
one client drives both.

Send times travel inside the message text: CLOCK_MONOTONIC is shared by every process on the
machine, so the operator's process can subtract it from its own receive time."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from .procs import Control

MARK = "b "  # benchmark messages start with this, then the send time
# Frames are compact JSON with `type` first: a substring test spots them without parsing,
# which keeps the generators from becoming the limit.
IS_MESSAGE = '{"type":"message",'
IS_ACK = '{"type":"ack",'


async def open_visitor(ws_base: str, token: str | None = None, last_seq: int = 0) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await websockets.connect(ws_base + "/ws/widget", max_size=2**22, open_timeout=120, ping_interval=None)
    await ws.send(json.dumps({"type": "hello", "token": token, "last_seq": last_seq}))
    while (frame := json.loads(await ws.recv()))["type"] != "welcome":
        pass
    return ws, frame


async def open_operator(ws_base: str, token: str) -> ClientConnection:
    ws = await websockets.connect(ws_base + "/ws/inbox", max_size=2**22, open_timeout=60, ping_interval=None)
    await ws.send(json.dumps({"type": "hello", "token": token, "cursors": {}}))
    while json.loads(await ws.recv())["type"] != "welcome":
        pass
    return ws


async def login(http_base: str, email: str, password: str) -> str:
    if not http_base:
        return "reference"  # the bare relay has no accounts
    async with httpx.AsyncClient(base_url=http_base, timeout=30) as http:
        r = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
        r.raise_for_status()
        return str(r.json()["token"])


async def connect_many(ws_base: str, n: int, concurrency: int = 200) -> list[tuple[ClientConnection, dict[str, Any]]]:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> tuple[ClientConnection, dict[str, Any]]:
        async with gate:
            return await open_visitor(ws_base)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def say(ws: ClientConnection, client_msg_id: str, text: str) -> dict[str, Any]:
    """Send one message and wait for its ack (other frames are skipped)."""
    await ws.send(json.dumps({"type": "message.send", "client_msg_id": client_msg_id, "text": text}))
    while (frame := json.loads(await ws.recv()))["type"] != "ack":
        pass
    return dict(frame)


def abort_all(sockets: list[ClientConnection]) -> None:
    for ws in sockets:
        ws.transport.abort()


# --- roles -----------------------------------------------------------------------------------


async def hold(ctl: Control, ws_base: str, n: int) -> None:
    """Connect n widgets (hello/welcome each), report how fast, hold them until told."""
    started = time.monotonic()
    socks = await connect_many(ws_base, n)
    ctl.report({"connected": len(socks), "seconds": time.monotonic() - started})
    await ctl.sync()  # the conductor reads the server's memory now
    abort_all([ws for ws, _ in socks])


async def paced_visitors(ctl: Control, ws_base: str, n: int, rate: float, duration: float, tag: str) -> None:
    """n visitors with a conversation each; messages at a steady rate, round-robin, open loop."""
    tag = f"{tag}-{uuid.uuid4().hex[:8]}"  # client message ids never repeat across runs
    socks = [ws for ws, _ in await connect_many(ws_base, n)]
    await asyncio.gather(*(say(ws, f"{tag}-warm-{i}", "warm up") for i, ws in enumerate(socks)))
    acked = 0

    async def drain(ws: ClientConnection) -> None:
        nonlocal acked
        async for raw in ws:
            if IS_ACK in str(raw):
                acked += 1

    readers = [asyncio.create_task(drain(ws)) for ws in socks]
    await ctl.sync()  # everyone connected and warm
    total = int(rate * duration)
    start = time.monotonic()
    behind = 0.0
    for i in range(total):
        due = start + i / rate
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        else:
            behind = max(behind, now - due)
        await socks[i % n].send(json.dumps({"type": "message.send", "client_msg_id": f"{tag}-{i}",
                                            "text": f"{MARK}{time.monotonic():.6f}"}))
    deadline = time.monotonic() + 15
    while acked < total and time.monotonic() < deadline:  # noqa: ASYNC110 - counted by many readers
        await asyncio.sleep(0.05)
    ctl.report({"sent": total, "acked": acked, "max_behind_s": behind})
    for task in readers:
        task.cancel()
    abort_all(socks)


async def listen(ctl: Control, ws_base: str, http_base: str, email: str, password: str, n_ops: int,
                 expected: int, duration: float) -> None:
    """Operators: the first records each benchmark message's latency (once per message id);
    all count what they receive. Ends when all expected messages came or time is up."""
    token = await login(http_base, email, password)
    socks = [await open_operator(ws_base, token) for _ in range(n_ops)]
    latencies: dict[Any, float] = {}
    counts = [0] * n_ops
    done = asyncio.Event()

    async def read(k: int, ws: ClientConnection) -> None:
        async for raw in ws:
            now = time.monotonic()
            counts[k] += 1
            if k == 0 and MARK in str(raw):
                frame = json.loads(raw)
                if frame["type"] == "message":
                    text = frame["message"]["text"]
                    if text.startswith(MARK):
                        latencies.setdefault(frame["message"]["id"], now - float(text[len(MARK):]))
                        if len(latencies) >= expected:
                            done.set()

    readers = [asyncio.create_task(read(k, ws)) for k, ws in enumerate(socks)]
    await ctl.sync()  # ready
    try:
        await asyncio.wait_for(done.wait(), duration + 20)
    except TimeoutError:
        pass
    ctl.report({"latencies": list(latencies.values()), "frames": sum(counts)})
    for task in readers:
        task.cancel()
    abort_all(socks)


async def saturate(ctl: Control, ws_base: str, n: int, window: int, duration: float, tag: str) -> None:
    """n visitors each keeping `window` messages in flight: as fast as the server answers.
    Counts frames received inside the measured window."""
    socks = [ws for ws, _ in await connect_many(ws_base, n)]
    await asyncio.gather(*(say(ws, f"{tag}-warm-{i}", "warm up") for i, ws in enumerate(socks)))
    await ctl.sync()  # ready
    start = time.monotonic()
    end = start + duration
    frames = acked = 0

    async def run(k: int, ws: ClientConnection) -> None:
        nonlocal frames, acked
        sent = 0

        async def send() -> None:
            nonlocal sent
            sent += 1
            await ws.send(json.dumps({"type": "message.send", "client_msg_id": f"{tag}-{k}-{sent}",
                                      "text": f"{MARK}{time.monotonic():.6f}"}))

        for _ in range(window):
            await send()
        async for raw in ws:
            if time.monotonic() >= end:
                return
            if IS_MESSAGE in str(raw):
                frames += 1
            elif IS_ACK in str(raw):
                acked += 1
                await send()

    await asyncio.gather(*(asyncio.wait_for(run(k, ws), duration + 5) for k, ws in enumerate(socks)),
                         return_exceptions=True)
    ctl.report({"frames": frames, "acked": acked})
    abort_all(socks)


async def count_frames(ctl: Control, ws_base: str, http_base: str, email: str, password: str, n_ops: int,
                       duration: float) -> None:
    """Operators counting every frame they receive inside the measured window."""
    token = await login(http_base, email, password)
    socks = [await open_operator(ws_base, token) for _ in range(n_ops)]
    await ctl.sync()  # ready
    end = time.monotonic() + duration
    frames = 0

    async def read(ws: ClientConnection) -> None:
        nonlocal frames
        async for raw in ws:
            if time.monotonic() >= end:
                return
            if IS_MESSAGE in str(raw):
                frames += 1

    await asyncio.gather(*(asyncio.wait_for(read(ws), duration + 5) for ws in socks), return_exceptions=True)
    ctl.report({"frames": frames})
    abort_all(socks)


async def storm(ctl: Control, ws_base: str, n: int, tag: str) -> None:
    """n visitors with one message each drop at once and reconnect at once with resume:
    how long until every one has its welcome and its whole thread again."""
    socks = await connect_many(ws_base, n)
    acks = await asyncio.gather(*(say(ws, f"{tag}-{i}", "before the storm") for i, (ws, _) in enumerate(socks)))
    tokens = [welcome["token"] for _, welcome in socks]
    await ctl.sync()  # all set
    abort_all([ws for ws, _ in socks])
    await ctl.sync()  # go

    retries = 0

    async def resync(token: str, seq: int) -> ClientConnection:
        nonlocal retries
        delay = 0.5
        while True:  # as the widget does: a refused or dropped attempt is retried with backoff
            try:
                ws, welcome = await open_visitor(ws_base, token, 0)
                last = welcome["conversation"]["last_seq"] if welcome["conversation"] else 0
                assert last >= seq
                got = 0
                while got < last:
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "message":
                        got = frame["message"]["seq"]
                return ws
            except (websockets.ConnectionClosed, OSError, TimeoutError):
                retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)

    start = time.monotonic()
    back = await asyncio.gather(*(resync(t, a["seq"]) for t, a in zip(tokens, acks, strict=True)))
    ctl.report({"reconnected": len(back), "seconds": time.monotonic() - start, "retries": retries})
    abort_all(back)
