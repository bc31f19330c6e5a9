"""Our uvicorn websocket protocol: uvicorn's websockets-sansio one, holding less per socket and
letting a `Connection` write its frames straight to the transport.

What uvicorn's ASGI `send` does per frame (an awaited event, the ASGI message dict, the sansio
protocol's frame object, a `transport.write` each) was a quarter of the fan-out's CPU; here a
connection's frames of one delivery round are framed by hand and go out in one write. What an
idle socket holds was 2.6 times a bare `websockets` server's: here the receive queue and the
"writable" flag are a list and a bool instead of an `asyncio.Queue` and an `asyncio.Event`
(with their deques and their inner events), and the handshake's request and response are let
go once the socket is open.

Serve with `ws="chat_server.realtime.wire:ChatWebSocketProtocol"` (`chat-server serve` does).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import MutableMapping
from typing import Any, Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

SCOPE_KEY = "chat.wire"  # the scope's extensions hold the protocol under this key
CLOSE_TIMEOUT = 2.0  # a client that has not answered our close by then is dropped, with its backlog


class Sink(Protocol):
    """The connection the protocol reports to: the transport drained, or stayed full too long."""

    def drained(self) -> None: ...
    def stalled(self) -> None: ...


def _text_header(size: int) -> bytes:
    # Server frames are not masked (RFC 6455 5.1); FIN + text opcode.
    if size < 126:
        return bytes((0x81, size))
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size)
    return struct.pack("!BBQ", 0x81, 127, size)


class _Inbox:
    """uvicorn's receive queue for one socket, with one reader (the app): a list and a future
    instead of an `asyncio.Queue` (two deques and an inner `Event` each)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Flag:
    """uvicorn's "writable" event: set unless the transport's buffer is over its high-water
    mark. Only the handshake and error paths wait on it; our frames check `is_set()`."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        if self._set:
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        await waiter


class ChatWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        self.writable = _Flag()  # type: ignore[assignment]
        self.close_timeout = CLOSE_TIMEOUT
        self.sink: Sink | None = None
        self.stall_timeout = 30.0
        self._stall: asyncio.TimerHandle | None = None
        self._raw = not self.config.ws_per_message_deflate  # no extension: frames are framed here

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:
            self.scope["extensions"][SCOPE_KEY] = self  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete:
            # The socket is open (or refused): the handshake's headers are not needed again.
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]

    # --- what a Connection uses -------------------------------------------------------------

    @property
    def open(self) -> bool:
        return not (self.close_sent or self.disconnected or self.transport.is_closing())

    def attach(self, sink: Sink, stall_timeout: float) -> None:
        self.sink, self.stall_timeout = sink, stall_timeout
        if not self.writable.is_set():
            self._arm_stall()

    def can_write(self) -> bool:
        return self.writable.is_set()

    def write_frames(self, frames: list[str]) -> None:
        """Every frame of one round in one `transport.write`."""
        if not self.open:
            return
        if self._raw:
            parts: list[bytes] = []
            for frame in frames:
                data = frame.encode()
                parts.append(_text_header(len(data)))
                parts.append(data)
            self.transport.write(b"".join(parts))
            return
        try:
            for frame in frames:
                self.conn.send_text(frame.encode())
        except InvalidState:
            return
        self.transport.write(b"".join(self.conn.data_to_send()))

    def close_with(self, code: int) -> None:
        """Send our close frame (behind whatever the transport still holds) and end the app's
        reads at once; the connection drops when the client answers or after CLOSE_TIMEOUT."""
        self._disarm_stall()
        self.sink = None
        if not self.open:
            return
        self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": ""})
        try:
            self.conn.send_close(code)
        except InvalidState:
            return
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # abort, not close: close() would wait for a client that stopped reading to take the
        # backlog first, and keep it in memory meanwhile.
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    # --- the transport's flow control -------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.sink is not None:
            self._arm_stall()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._disarm_stall()
        if self.sink is not None:
            self.sink.drained()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_stall()
        self.sink = None
        super().connection_lost(exc)

    def _arm_stall(self) -> None:
        if self._stall is None:
            self._stall = self.loop.call_later(self.stall_timeout, self._stalled)

    def _disarm_stall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _stalled(self) -> None:
        # The client has not taken what the transport holds for stall_timeout: it is gone.
        self._stall = None
        if self.sink is not None:
            self.sink.stalled()


def wire_of(scope: MutableMapping[str, Any]) -> ChatWebSocketProtocol | None:
    found = scope.get("extensions", {}).get(SCOPE_KEY)
    return found if isinstance(found, ChatWebSocketProtocol) else None

