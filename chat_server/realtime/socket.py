"""Plumbing shared by both sockets: hello, the read loop, the write loop, errors, closing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..actions.errors import ActionError
from ..db import is_unavailable
from ..frames import ErrorFrame
from .connection import Connection

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0
SEND_TIMEOUT = 30.0  # a client that takes this long to take one frame is gone
CLOSE_TIMEOUT = 2.0  # under the shutdown grace (cli.CLOSE_GRACE_SECONDS): a stuck client cannot hold a stop


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
    """Read frames and hand them to `handle` while a writer drains the connection's queue."""
    writer = asyncio.create_task(_write(ws, conn))
    try:
        await _read(ws, conn, adapter, max_bytes, handle, writer)
    finally:
        if conn.close_code == 1013:
            on_slow()
        conn.close(conn.close_code or 1000)
        try:
            await asyncio.wait_for(writer, SEND_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError):
            writer.cancel()


class _Cut:
    """Ends a task's wait on the client from outside (a callback, not another task per frame),
    told apart from any other cancellation of that task."""

    def __init__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.done = False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.task.cancel()

    def absorb(self) -> None:
        """In `except CancelledError`: re-raise unless this cut was the only cancellation."""
        if not self.done or self.task.uncancel() > 0:
            raise asyncio.CancelledError


async def _read(
    ws: WebSocket, conn: Connection, adapter: TypeAdapter[Any], max_bytes: int, handle: Handler,
    writer: asyncio.Task[None],
) -> None:
    # The writer ends when the socket is closing (close(), a slow client, a send error). A read
    # waiting for the client then stops at once; a frame being handled is let finish.
    cut = _Cut()
    receiving = False

    def writer_ended(_: object) -> None:
        if receiving:
            cut()

    writer.add_done_callback(writer_ended)
    try:
        while not conn.closed and not writer.done():
            receiving = True
            try:
                message = await ws.receive()
            except asyncio.CancelledError:
                cut.absorb()
                return
            finally:
                receiving = False
            if message["type"] == "websocket.disconnect":
                # close(), not just the flag: the writer is waiting for frames and must be woken,
                # or the gone socket would stay in the hub until SEND_TIMEOUT.
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
    finally:
        writer.remove_done_callback(writer_ended)


async def _write(ws: WebSocket, conn: Connection) -> None:
    # A send waits while the client is not reading. The writer takes what is queued in batches;
    # a client that has not taken a whole batch within SEND_TIMEOUT is gone, and close() (the
    # queue overflowed, the server is stopping) cuts a blocked batch short at once. One timer
    # per socket checks the batch's age, re-armed at most once per SEND_TIMEOUT: no future and
    # no timer per frame.
    loop = asyncio.get_running_loop()
    queue = conn.queue
    cut = _Cut()
    batch_started: float | None = None
    timer: asyncio.TimerHandle | None = None

    def check_age() -> None:
        nonlocal timer
        timer = None
        if batch_started is None:
            return
        due = batch_started + SEND_TIMEOUT
        if loop.time() >= due:
            cut()
        else:
            timer = loop.call_at(due, check_age)

    def interrupt() -> None:
        if batch_started is not None:
            cut()

    conn.interrupt = interrupt
    try:
        while (frame := await queue.get()) is not None:
            batch_started = loop.time()
            if timer is None:
                timer = loop.call_at(batch_started + SEND_TIMEOUT, check_age)
            await ws.send_text(frame)
            for _ in range(queue.qsize()):
                if (frame := queue.get_nowait()) is None:
                    break
                await ws.send_text(frame)
            else:
                batch_started = None
                continue
            break
    except asyncio.CancelledError:
        cut.absorb()  # a send was still waiting for room: nothing of it was written
        conn.interrupt = None
        conn.close(1013)  # no-op when close() came first; else a client this slow is gone
    except (WebSocketDisconnect, RuntimeError, OSError):
        conn.closed = True
        return
    finally:
        conn.interrupt = None
        if timer is not None:
            timer.cancel()
    if ws.application_state == WebSocketState.CONNECTED and ws.client_state == WebSocketState.CONNECTED:
        try:
            # The close frame queues behind whatever the client has not read yet; give it a
            # moment, then let the server drop the connection.
            await asyncio.wait_for(ws.close(conn.close_code or 1000), CLOSE_TIMEOUT)
        except (RuntimeError, OSError, TimeoutError):
            pass


def client_ip(ws: WebSocket) -> str:
    return ws.client.host if ws.client else "unknown"
