"""The references our server is measured against, each run in its own pinned process:

- a bare `websockets` server: holds plain connections, and relays each visitor message to
  every operator and back to the sender (the same fan-out as ours, without persistence);
- a python-socketio relay with its Redis manager: what a Python developer would otherwise
  reach for to build a chat, doing the same fan-out through Redis pub/sub."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from typing import Any

from .procs import Control

COMPACT = (",", ":")  # as our server writes frames, so clients can spot frame types the same way


def bare_relay_main(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    operators: set[ServerConnection] = set()
    ids = itertools.count(1)

    async def handler(ws: ServerConnection) -> None:
        is_operator = ws.request is not None and ws.request.path.startswith("/ws/inbox")
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "welcome", "token": "t", "conversation": None}))
        if is_operator:
            operators.add(ws)
        seq = 0
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") != "message.send":
                    continue
                seq += 1
                message_id = next(ids)
                await ws.send(json.dumps({"type": "ack", "client_msg_id": frame["client_msg_id"],
                                          "message_id": message_id, "seq": seq, "duplicate": False}, separators=COMPACT))
                out = json.dumps({"type": "message", "message": {"id": message_id, "seq": seq, "text": frame["text"]}},
                                 separators=COMPACT)
                broadcast([*operators, ws], out)
        except ConnectionClosed:
            pass  # the load generators drop their sockets without a close frame when a run ends
        finally:
            operators.discard(ws)

    async def main() -> None:
        # No permessage-deflate, like our server by default (CHAT_WS_COMPRESSION): the same bytes on the wire.
        async with serve(handler, "127.0.0.1", port, max_size=2**20, ping_interval=None, backlog=4096, compression=None):
            await asyncio.Future()

    asyncio.run(main())


def socketio_main(port: int, redis_url: str) -> None:
    import socketio  # type: ignore[import-untyped]
    import uvicorn

    sio = socketio.AsyncServer(async_mode="asgi", client_manager=socketio.AsyncRedisManager(redis_url))

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, _environ: dict[str, Any], auth: dict[str, Any] | None) -> None:
        if auth and auth.get("role") == "operator":
            await sio.enter_room(sid, "operators")

    @sio.on("send")  # type: ignore[untyped-decorator]
    async def send(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        await sio.emit("message", data, room="operators")
        await sio.emit("message", data, to=sid)
        return {"ok": True}

    uvicorn.run(socketio.ASGIApp(sio), host="127.0.0.1", port=port, log_level="warning", backlog=4096)


# --- socket.io load roles (the socket.io protocol is not ours, so it has its own clients) ---


async def sio_saturate(ctl: Control, url: str, n: int, window: int, duration: float) -> None:
    import socketio

    clients = []
    for _ in range(n):
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, transports=["websocket"])
        clients.append(client)
    await ctl.sync()  # ready
    end = time.monotonic() + duration
    frames = acked = 0

    async def run(client: Any) -> None:
        nonlocal frames, acked
        got = asyncio.Queue[None]()

        @client.on("message")  # type: ignore[untyped-decorator]
        async def on_message(_data: Any) -> None:
            nonlocal frames
            if time.monotonic() < end:
                frames += 1

        async def one() -> None:
            nonlocal acked
            try:
                while time.monotonic() < end:
                    await client.call("send", {"text": f"b {time.monotonic():.6f}"}, timeout=10)
                    if time.monotonic() < end:
                        acked += 1
            finally:
                got.put_nowait(None)

        for _ in range(window):
            asyncio.create_task(one())
        for _ in range(window):
            await got.get()

    await asyncio.gather(*(run(c) for c in clients), return_exceptions=True)
    ctl.report({"frames": frames, "acked": acked})
    ctl.flush()
    os._exit(0)  # socket.io clients leave background tasks behind; the count is already reported


async def sio_count(ctl: Control, url: str, n_ops: int, duration: float) -> None:
    import socketio

    frames = 0
    end = float("inf")
    clients = []
    for _ in range(n_ops):
        client = socketio.AsyncClient(reconnection=False)

        @client.on("message")  # type: ignore[untyped-decorator]
        async def on_message(_data: Any) -> None:
            nonlocal frames
            if time.monotonic() < end:
                frames += 1

        await client.connect(url, transports=["websocket"], auth={"role": "operator"})
        clients.append(client)
    await ctl.sync()  # ready
    end = time.monotonic() + duration
    await asyncio.sleep(duration + 0.5)
    ctl.report({"frames": frames})
    ctl.flush()
    os._exit(0)
