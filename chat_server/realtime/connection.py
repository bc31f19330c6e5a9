"""One open socket: what it may receive, what it has already got, and its send queue."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..bus import Dispatch
from ..frames import ResetFrame

# Loads what a connection is missing in one conversation: (seq, frame) pairs after `after`.
Backfill = Callable[["Connection", int, int], Awaitable[list[tuple[int, str]]]]

_ids = itertools.count(1)
log = logging.getLogger(__name__)


class SlowConsumer(Exception):
    """The client stopped reading: it is disconnected rather than buffered without bound."""


@dataclass(eq=False)
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
    queue: asyncio.Queue[str | None] = field(init=False)
    closed: bool = False
    close_code: int | None = None
    # Set by the socket's writer while it is handing frames to the client: close() (the queue
    # overflowed, the server is stopping) must not wait behind a client that stopped reading.
    interrupt: Callable[[], None] | None = None
    _fill_generations: dict[int, int] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.queue_limit)

    def send(self, frame: str) -> None:
        """Queue a frame; a full queue means the client is not reading."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.close(1013)

    def close(self, code: int) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        if self.interrupt is not None:
            self.interrupt()
        # Wake the writer even when the queue is full: drop what is queued, it will be resumed.
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

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
