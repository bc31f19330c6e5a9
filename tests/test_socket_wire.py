"""The socket's direct write path (realtime/wire.py): frames a client can read, one write per
socket per turn, and the slow-consumer rules kept without a writer task."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.streams import StreamReader

from chat_server.realtime.connection import Connection
from chat_server.realtime.wire import ChatWebSocketProtocol

pytestmark = pytest.mark.anyio


class Transport:
    """Records what is written; flow control is driven by the test."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def app(scope: Any, receive: Any, send: Any) -> None:
    pass


def open_socket(compression: bool = False) -> tuple[ChatWebSocketProtocol, Transport, Connection]:
    config = Config(app=app, ws_per_message_deflate=compression)
    config.load()
    wire = ChatWebSocketProtocol(config, ServerState(), {})
    transport = Transport()
    wire.transport = transport  # type: ignore[assignment]
    wire.handshake_complete = True
    wire.conn.state = State.OPEN
    conn = Connection("operator", 5, operator_id=1, role="admin")
    wire.attach(conn, 0.05)
    conn.attach(wire)
    return wire, transport, conn


def frames_read_by_a_client(data: bytes) -> list[Frame]:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    while reader.buffer:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
        else:
            raise AssertionError("a frame was cut short")
    return frames


async def a_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_frames_of_every_length_reach_the_client_in_one_write() -> None:
    _, transport, conn = open_socket()
    # The three header forms: 7-bit, 16-bit and 64-bit lengths, at their edges.
    texts = ["a" * 125, "é" * 63, "b" * 126, "c" * 65535, "d" * 65536]
    for text in texts:
        conn.send(text)
    await a_turn()
    assert len(transport.writes) == 1
    got = frames_read_by_a_client(transport.writes[0])
    assert [(f.opcode, f.fin, f.data.decode()) for f in got] == [(Opcode.TEXT, True, t) for t in texts]


async def test_with_compression_the_frames_go_through_the_protocol_object() -> None:
    wire, transport, conn = open_socket(compression=True)
    wire._raw = False  # as when the client negotiated permessage-deflate
    conn.send("hello")
    conn.send("world")
    await a_turn()
    assert len(transport.writes) == 1
    assert [f.data for f in frames_read_by_a_client(transport.writes[0])] == [b"hello", b"world"]


async def test_a_full_transport_holds_frames_until_it_drains() -> None:
    wire, transport, conn = open_socket()
    wire.stall_timeout = 30.0
    wire.pause_writing()
    conn.send("one")
    conn.send("two")
    await a_turn()
    assert transport.writes == []  # waiting, in order, bounded by the queue limit
    wire.resume_writing()
    await a_turn()
    assert [f.data for f in frames_read_by_a_client(b"".join(transport.writes))] == [b"one", b"two"]
    assert not conn.closed


async def test_a_queue_over_its_limit_closes_with_1013() -> None:
    wire, transport, conn = open_socket()
    wire.stall_timeout = 30.0
    wire.pause_writing()
    for i in range(6):  # the limit is 5
        conn.send(str(i))
    assert conn.closed and conn.close_code == 1013
    assert (await wire.receive())["type"] == "websocket.disconnect"  # the read ends at once
    [close] = frames_read_by_a_client(b"".join(transport.writes))
    assert close.opcode is Opcode.CLOSE and close.data[:2] == (1013).to_bytes(2, "big")


async def test_a_transport_full_for_the_send_timeout_closes_with_1013() -> None:
    wire, _, conn = open_socket()  # stall timeout 0.05 s
    wire.pause_writing()
    conn.send("never taken")
    assert (await asyncio.wait_for(wire.receive(), 5))["type"] == "websocket.disconnect"
    assert conn.close_code == 1013


async def test_a_close_aborts_a_client_that_does_not_answer() -> None:
    wire, transport, conn = open_socket()
    wire.close_timeout = 0.05
    conn.close(1001)
    assert (await wire.receive()) == {"type": "websocket.disconnect", "code": 1001, "reason": ""}
    for _ in range(100):
        if transport.aborted:
            break
        await asyncio.sleep(0.01)
    assert transport.aborted
    conn.send("after the close")
    await a_turn()
    assert len(transport.writes) == 1  # only the close frame
