"""One open socket: what it may receive, what it has already got, and what waits to be sent."""

from __future__ import annotations

import asyncio
import itertools
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..bus import Dispatch
from ..frames import ResetFrame

# Loads what a connection is missing in one conversation: (seq, frame) pairs after `after`.
Backfill = Callable[["Connection", int, int], Awaitable[list[tuple[int, str]]]]

_ids = itertools.count(1)
log = logging.getLogger(__name__)


class Wire(Protocol):
    """The socket's transport as a connection sees it (realtime/wire.py)."""

    def can_write(self) -> bool: ...
    def write_frames(self, frames: list[str]) -> None: ...
    def close_with(self, code: int) -> None: ...


class _Flusher:
    """Writes the frames queued during one turn of the event loop, one write per socket: every
    frame a socket is given in one delivery round (and an ack beside it) goes out together.
    One per event loop, one callback per turn whatever the number of sockets."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: list[Connection] = []

    def add(self, conn: Connection) -> None:
        if not self._due:
            self._loop.call_soon(self._run)
        self._due.append(conn)

    def _run(self) -> None:
        due, self._due = self._due, []
        for conn in due:
            conn.flush()


_flushers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Flusher] = weakref.WeakKeyDictionary()


def _flusher_of_loop() -> _Flusher:
    loop = asyncio.get_running_loop()
    found = _flushers.get(loop)
    if found is None:
        found = _flushers[loop] = _Flusher(loop)
    return found


@dataclass(eq=False, slots=True)
class Connection:
    kind: str  # "visitor" | "operator"
    queue_limit: int
    contact_id: int | None = None
    operator_id: int | None = None
    role: str | None = None
    # What let it in: the hash of an operator's session token, or a visitor's visitor id; and
    # when (monotonic) that was checked, so a revocation racing the check is still applied.
    credential: str | None = None
    checked_at: float = 0.0
    id: int = field(default_factory=lambda: next(_ids))
    # conversation id -> last seq this socket has been given (public_seq for visitors)
    cursors: dict[int, int] = field(default_factory=dict)
    epochs: dict[int, int] = field(default_factory=dict)
    # conversations being back-filled from the database: live dispatches wait here meanwhile
    filling: dict[int, list[Dispatch]] = field(default_factory=dict)
    closed: bool = False
    close_code: int | None = None
    # Frames not yet handed to the transport: this turn's, or all of them while the client is
    # not taking what the transport holds. Bounded by queue_limit.
    pending: list[str] = field(default_factory=list)
    wire: Wire | None = None
    _flush_due: bool = False
    _flusher: _Flusher | None = None
    _fill_generations: dict[int, int] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def attach(self, wire: Wire) -> None:
        """From now on frames go to `wire`; what was queued before goes first."""
        self.wire = wire
        self._flusher = _flusher_of_loop()
        if self.closed:
            wire.close_with(self.close_code or 1000)
        elif self.pending:
            self._schedule()

    def send(self, frame: str) -> None:
        """Queue a frame; a full queue means the client is not reading."""
        if self.closed:
            return
        if len(self.pending) >= self.queue_limit:
            self.close(1013)
            return
        self.pending.append(frame)
        if not self._flush_due and self.wire is not None:
            self._schedule()

    def _schedule(self) -> None:
        self._flush_due = True
        (self._flusher or _flusher_of_loop()).add(self)

    def flush(self) -> None:
        self._flush_due = False
        wire = self.wire
        if self.closed or wire is None or not self.pending or not wire.can_write():
            return  # a full transport: drained() sends the rest, or the stall timer ends it
        frames, self.pending = self.pending, []
        wire.write_frames(frames)

    def drained(self) -> None:
        """The transport took what it held: the frames that waited meanwhile go now."""
        if self.pending and not self._flush_due:
            self._schedule()

    def stalled(self) -> None:
        """The client took nothing for the send timeout: a client this slow is gone."""
        self.close(1013)

    def close(self, code: int) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.pending = []  # dropped: the client resumes by cursor
        if self.wire is not None:
            self.wire.close_with(code)

    def default_cursor(self, conversation_id: int) -> int | None:
        # A visitor owns one conversation and has seen nothing of one it was not told about;
        # an operator tracks only what the inbox said it holds.
        return 0 if self.kind == "visitor" else None

    def offer(self, delivery: Dispatch, backfill: Backfill) -> None:
        """Give the socket a delivery: in order, once, holes filled from the database."""
        if self.closed:
            return  # gone or cut off: no fills for it; the client resumes by cursor
        conv = delivery.conversation_id
        if conv is None or (delivery.seq is None and not delivery.reset):
            self.send(delivery.frame)
            return
        if delivery.reset:
            self.send(delivery.frame)
            self.epochs[conv] = delivery.epoch or 1
            if conv in self.cursors or self.kind == "visitor":
                self.cursors.pop(conv, None)
                self.start_fill(conv, 0, self.filling.pop(conv, []), backfill)
            return
        if conv in self.filling:
            self.filling[conv].append(delivery)
            return
        known_epoch = self.epochs.get(conv)
        if delivery.epoch is not None and known_epoch is not None and delivery.epoch > known_epoch:
            self.send(ResetFrame(conversation_id=conv, epoch=delivery.epoch).model_dump_json())
            self.epochs[conv] = delivery.epoch
            self.start_fill(conv, 0, [delivery], backfill)
            return
        if delivery.epoch is not None:
            self.epochs[conv] = delivery.epoch
        seq = delivery.seq
        assert seq is not None
        cursor = self.cursors.get(conv, self.default_cursor(conv))
        if cursor is None or seq == cursor + 1:
            self.cursors[conv] = seq
            self.send(delivery.frame)
        elif seq > cursor + 1:
            self.start_fill(conv, cursor, [delivery], backfill)
        # else: already given (a resend after resume, or the same news twice): drop it

    def start_fill(self, conv: int, after: int, waiting: list[Dispatch], backfill: Backfill) -> None:
        self.filling[conv] = waiting
        generation = self._fill_generations.get(conv, 0) + 1
        self._fill_generations[conv] = generation
        task = asyncio.create_task(self._fill(conv, after, backfill, generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, conv: int, after: int, backfill: Backfill, generation: int) -> None:
        try:
            missing = await backfill(self, conv, after)
        except Exception:
            # Could not reach the database: the client will resume when it reconnects.
            log.exception("back-fill of conversation %s after %s for %s socket %s failed; closing it with 1011",
                          conv, after, self.kind, self.id)
            self.filling.pop(conv, None)
            self.close(1011)
            return
        if self.filling.get(conv) is None or generation != self._fill_generations.get(conv):
            return  # a reset started a newer fill of this conversation; that one decides
        cursor = after
        for seq, frame in missing:
            if seq > cursor:
                self.send(frame)
                cursor = seq
        self.cursors[conv] = cursor
        for delivery in self.filling.pop(conv, []):
            self.offer(delivery, backfill)
