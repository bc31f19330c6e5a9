"""Clients that behave like the real widget and inbox through crashes and outages: each keeps what
it sent until it is acknowledged, reconnects with backoff, resumes from what it has shown, and
sends again (same `client_msg_id`) whatever was not acknowledged. The fault tests run several of
them against a server they stop, kill or starve, then check what each one saw."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import websockets

from tests.harness import ChatServer, Socket, api, operator, visitor

DROPPED = (OSError, httpx.HTTPError, websockets.InvalidHandshake, websockets.ConnectionClosed, TimeoutError)


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """Wait for state that other tasks keep (frames read, acks counted)."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - the state is plain attributes, not events
            await asyncio.sleep(0.005)


class ResilientVisitor:
    """A widget that sends its messages in order and keeps each until it is acknowledged:
    on a dropped socket it reconnects with backoff, resumes, and resends (same client_msg_id)
    everything not acknowledged yet. An `unavailable` error puts the message back to be sent
    again shortly, as the widget does."""

    def __init__(self, server: ChatServer, texts: list[str], window: int = 3, prefix: str = "msg",
                 pause: float = 0.01) -> None:
        self.server = server
        self.outbox = [(f"{prefix}-{i}", text) for i, text in enumerate(texts)]
        self.acked: dict[str, int] = {}  # client_msg_id -> message id
        self.shown: list[dict[str, Any]] = []  # message frames, in the order the widget showed them
        self.token: str | None = None
        self.window = window  # messages sent ahead of their acknowledgement
        self.pause = pause  # a person types between messages
        self.reconnects = 0
        self.duplicates = 0
        self.refused: list[dict[str, Any]] = []  # error frames answering a message

    @property
    def last_seq(self) -> int:
        return self.shown[-1]["seq"] if self.shown else 0

    @property
    def done(self) -> bool:
        return len(self.acked) == len(self.outbox) and set(self.acked.values()) <= {m["id"] for m in self.shown}

    async def run(self) -> None:
        backoff = 0.05
        while not self.done:
            try:
                sock, welcome = await visitor(self.server, token=self.token, last_seq=self.last_seq)
            except DROPPED:
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
        in_flight: list[tuple[str, str]] = []
        while pending or in_flight:
            while pending and len(in_flight) < self.window:
                message = pending.pop(0)
                await sock.send(type="message.send", client_msg_id=message[0], text=message[1])
                in_flight.append(message)
                await asyncio.sleep(self.pause)
            frame = await sock.recv(15)
            if frame["type"] == "ack":
                assert frame["client_msg_id"] == in_flight.pop(0)[0]  # answered in the order sent
                self.acked[frame["client_msg_id"]] = frame["message_id"]
                self.duplicates += frame["duplicate"]
            elif frame["type"] == "error" and frame.get("ref"):
                assert frame["ref"] == in_flight[0][0], frame
                self.refused.append(frame)
                # Nothing after it may overtake it: send them all again, in order, in a moment.
                pending = in_flight + pending
                in_flight = []
                await asyncio.sleep(0.2)
            elif frame["type"] == "message":
                self.show(frame["message"])
        # Our own last messages come back through the fan-out after their acks.
        while not self.done:
            frame = await sock.recv(15)
            if frame["type"] == "message":
                self.show(frame["message"])

    def show(self, message: dict[str, Any]) -> None:
        assert message["seq"] == self.last_seq + 1, f"gap or repeat: {message['seq']} after {self.last_seq}"
        self.shown.append(message)


class FollowingOperator:
    """An inbox that follows every conversation through reconnects, resuming each by its cursor
    (the conversation list is reloaded first, as the inbox does), and optionally sends `replies`
    into the conversations it knows, each kept until acknowledged."""

    def __init__(self, server: ChatServer, token: str, replies: list[str] | None = None, prefix: str = "op",
                 pause: float = 0.05, target: Callable[[list[int]], int] | None = None) -> None:
        self.server = server
        self.token = token
        self.threads: dict[int, list[dict[str, Any]]] = {}
        self.shown: list[dict[str, Any]] = []  # every message frame, in the order shown
        self.closes: list[int | None] = []
        self.sessions: list[dict[int, dict[str, int]]] = []  # the cursors each hello sent
        self.gaps = 0  # a live frame ran ahead of what was shown: resumed to fill it
        self.replies = [(f"{prefix}-{i}", text) for i, text in enumerate(replies or [])]
        self.reply_to: dict[str, int] = {}  # client_msg_id -> conversation, fixed once chosen
        self.acked: dict[str, int] = {}
        self.refused: list[dict[str, Any]] = []
        self.pause = pause
        self.target = target or (lambda ids: ids[len(self.reply_to) % len(ids)])

    @property
    def conversation_id(self) -> int | None:
        return next(iter(self.threads), None)

    def seen(self) -> int:
        return len(self.shown)

    async def run(self, until: int) -> None:
        """Until `until` messages have been shown and every reply is acknowledged."""
        backoff = 0.05
        while len(self.shown) < until or len(self.acked) < len(self.replies):
            try:
                sock = await self._connect()
            except DROPPED:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            except AssertionError:  # the list answered 503 while the database is away
                await asyncio.sleep(backoff)
                continue
            backoff = 0.05
            try:
                await self._session(sock, until)
            except _Gap:
                self.gaps += 1
            except websockets.ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd is not None else None)
            finally:
                await sock.close()

    async def _connect(self) -> Socket:
        known = set(self.threads)
        if self.replies or self.threads:
            async with api(self.server, self.token) as http:
                r = await http.get("/conversations", params={"limit": "200"})
                assert r.status_code == 200, r.text
                known |= {c["id"] for c in r.json()["items"]}
        cursors = {cid: {"seq": len(self.threads.get(cid, [])), "epoch": 1} for cid in known}
        self.sessions.append(cursors)
        return await operator(self.server, self.token, cursors)

    async def _session(self, sock: Socket, until: int) -> None:
        in_flight: tuple[str, str] | None = None
        next_send = 0.0
        while len(self.shown) < until or len(self.acked) < len(self.replies):
            now = asyncio.get_running_loop().time()
            if in_flight is None and self.threads and now >= next_send:
                waiting = [r for r in self.replies if r[0] not in self.acked]
                if waiting:
                    in_flight = waiting[0]
                    cid = self.reply_to.setdefault(in_flight[0], self.target(sorted(self.threads)))
                    await sock.send(type="message.send", conversation_id=cid, client_msg_id=in_flight[0],
                                    text=in_flight[1])
            try:
                frame = await sock.recv(0.05 if in_flight is None and len(self.acked) < len(self.replies) else 15)
            except TimeoutError:
                if len(self.acked) < len(self.replies) or len(self.shown) < until:
                    continue
                raise
            if frame["type"] == "ack" and in_flight is not None and frame["client_msg_id"] == in_flight[0]:
                self.acked[in_flight[0]] = frame["message_id"]
                in_flight = None
                next_send = asyncio.get_running_loop().time() + self.pause
            elif frame["type"] == "error" and in_flight is not None and frame.get("ref") == in_flight[0]:
                self.refused.append(frame)
                in_flight = None
                next_send = asyncio.get_running_loop().time() + 0.2
            elif frame["type"] == "message":
                self.show(frame["message"])

    def show(self, message: dict[str, Any]) -> None:
        thread = self.threads.setdefault(message["conversation_id"], [])
        message["session"] = len(self.sessions)
        assert message["seq"] > len(thread), (
            f"repeat in session {len(self.sessions)} (cursors {self.sessions[-1]}): {message} after "
            f"{[(m['seq'], m['id'], m['session']) for m in thread]}")
        if message["seq"] != len(thread) + 1:
            raise _Gap  # a conversation begun while the list was loading: resume it by cursor
        thread.append(message)
        self.shown.append(message)


class _Gap(Exception):
    pass
