"""Plumbing shared by both sockets: hello, the read loop, errors, closing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..actions.errors import ActionError
from ..db import is_unavailable
from ..frames import ErrorFrame
from .connection import Connection
from .wire import wire_of

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0
SEND_TIMEOUT = 30.0  # a client that takes nothing of what waits for it this long is gone


def error_frame(code: str, message: str, ref: str | None = None) -> str:
    return ErrorFrame(code=code, message=message, ref=ref).model_dump_json()


def describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "frame"
    return f"{where}: {first['msg']}"


async def send_and_close(ws: WebSocket, frame: str, code: int) -> None:
    try:
        await ws.send_text(frame)
        await ws.close(code)
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass


async def read_hello(ws: WebSocket, adapter: TypeAdapter[Any], max_bytes: int) -> Any | None:
    """The first frame must be a valid hello; anything else ends the socket with an error."""
    try:
        raw = await asyncio.wait_for(ws.receive_text(), HELLO_TIMEOUT)
    except TimeoutError:
        await send_and_close(ws, error_frame("hello_timeout", "send hello first"), 1008)
        return None
    except (WebSocketDisconnect, KeyError, RuntimeError):
        return None  # gone, or sent bytes instead of text
    if len(raw) > max_bytes:
        await send_and_close(ws, error_frame("frame_too_large", f"frames are at most {max_bytes} bytes"), 1009)
        return None
    try:
        frame = adapter.validate_json(raw)
    except ValidationError as exc:
        await send_and_close(ws, error_frame("invalid_frame", describe(exc)), 1008)
        return None
    if frame.type != "hello":
        await send_and_close(ws, error_frame("hello_expected", "the first frame must be hello"), 1008)
        return None
    return frame


Handler = Callable[[Any], Awaitable[None]]


async def run_socket(
    ws: WebSocket, conn: Connection, adapter: TypeAdapter[Any], max_bytes: int, handle: Handler,
    on_slow: Callable[[], None],
) -> None:
    """Read frames and hand them to `handle`; the connection writes straight to the transport."""
    wire = wire_of(ws.scope)
    if wire is None:
        log.error("this socket is not served by chat_server.realtime.wire:ChatWebSocketProtocol; closing it")
        conn.close(1011)
        await send_and_close(ws, error_frame("internal", "the server is misconfigured"), 1011)
        return
    # A client that takes nothing of what the transport holds for SEND_TIMEOUT is gone (1013);
    # so is one whose queue overflows. Either way close() ends the read below at once.
    wire.attach(conn, SEND_TIMEOUT)
    conn.attach(wire)
    try:
        await _read(ws, conn, adapter, max_bytes, handle)
    finally:
        if conn.close_code == 1013:
            on_slow()
        conn.close(conn.close_code or 1000)


async def _read(ws: WebSocket, conn: Connection, adapter: TypeAdapter[Any], max_bytes: int, handle: Handler) -> None:
    while not conn.closed:
        try:
            message = await ws.receive()
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        if message["type"] == "websocket.disconnect":
            conn.close(1000)
            return
        raw = message.get("text")
        if raw is None:
            conn.send(error_frame("text_expected", "frames are JSON text"))
            continue
        if len(raw) > max_bytes:
            conn.send(error_frame("frame_too_large", f"frames are at most {max_bytes} bytes"))
            continue
        try:
            frame = adapter.validate_json(raw)
        except ValidationError as exc:
            conn.send(error_frame("invalid_frame", describe(exc)))
            continue
        try:
            await handle(frame)
        except ActionError as exc:
            conn.send(error_frame(exc.code, exc.message, getattr(frame, "client_msg_id", None) or frame.type))
        except Exception as exc:
            ref = getattr(frame, "client_msg_id", None)
            if is_unavailable(exc):
                log.warning("database unavailable", extra={"frame_type": frame.type, "error": str(exc)[:300]})
                conn.send(error_frame("unavailable", "the database cannot be reached; nothing was stored, retry shortly", ref))
                continue
            log.exception("socket frame failed", extra={"frame_type": frame.type})
            conn.send(error_frame("internal", "could not process this frame; retry it", ref))


def client_ip(ws: WebSocket) -> str:
    return ws.client.host if ws.client else "unknown"
