"""Publish/subscribe of dispatches: in-process by default, through Redis across processes.

The database is the truth. The bus only carries news of what was committed; a lost bus
message is recovered by the sockets' resume/gap-fill, never by the bus itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "chat:dispatches"


@dataclass(frozen=True, slots=True)
class Audience:
    """Who receives a frame, spelled out: contacts' widget sockets, operators by id or role,
    or every widget socket (only for public facts such as "an operator is online")."""

    contact_ids: tuple[int, ...] = ()
    operator_ids: tuple[int, ...] = ()
    roles: tuple[str, ...] = ()
    all_visitors: bool = False


@dataclass(frozen=True, slots=True)
class AccessChange:
    """Who may keep an open socket changed: every process's hub applies it to its sockets.

    `kind` says what happened to `subject` (an operator id, or a contact id for visitors):
    "session" — the session whose token hashes to `detail` ended (logout);
    "operator" — every session of the operator ended (deactivated, password changed);
    "role" — the operator's role is now `detail`;
    "visitor" — the tokens of visitor id `detail` of contact `subject` were revoked.
    """

    kind: str
    subject: int
    detail: str = ""


class DispatchKind(StrEnum):
    """What a dispatch is news of, so a listener can pick out what it cares about (the online
    cache: presence) without reading the frame."""

    message = "message"
    message_updated = "message_updated"
    conversation = "conversation"
    conversation_removed = "conversation_removed"
    receipt = "receipt"
    presence = "presence"
    typing = "typing"
    reset = "reset"
    access = "access"  # who may keep a socket open changed (carries an AccessChange, no frame)


@dataclass(slots=True)
class Dispatch:
    kind: DispatchKind
    audience: Audience
    frame: str  # serialised once, sent as is to every recipient
    conversation_id: int | None = None
    # Position in the recipients' numbering (public_seq for contacts, seq for operators):
    # sockets drop what they already have and fill holes from the database.
    seq: int | None = None
    epoch: int | None = None
    # A merge moved the contact: sockets of rekey[0] now belong to rekey[1].
    rekey: tuple[int, int] | None = None
    # The thread was renumbered: sockets holding it drop it and are given it again from seq 1.
    reset: bool = False
    published_at: float = field(default_factory=time.time)
    # Not news for a client but a change of who may listen (no frame is sent).
    access: AccessChange | None = None

    def to_json(self) -> dict[str, Any]:
        a = self.audience
        return {
            "k": self.kind.value, "a": [a.contact_ids, a.operator_ids, a.roles, a.all_visitors],
            "f": self.frame, "c": self.conversation_id, "s": self.seq, "e": self.epoch,
            "r": self.rekey, "x": self.reset, "t": self.published_at,
            **({"g": [self.access.kind, self.access.subject, self.access.detail]} if self.access else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Dispatch:
        c, o, r, v = d["a"]
        return cls(
            DispatchKind(d["k"]), Audience(tuple(c), tuple(o), tuple(r), bool(v)), d["f"], d["c"], d["s"], d["e"],
            tuple(d["r"]) if d["r"] else None, d["x"], d["t"],
            AccessChange(*d["g"]) if d.get("g") else None,
        )


class Listener(Protocol):
    """Hears every dispatch committed anywhere (this process's hub, the online cache)."""

    def dispatch(self, dispatches: Sequence[Dispatch]) -> None: ...

    def resync(self) -> None:
        """News may have been lost: whatever was derived from it must be looked up again."""


class Listeners:
    """The bus's listeners, told in the order given."""

    def __init__(self, listeners: Sequence[Listener]) -> None:
        self._listeners = tuple(listeners)

    def dispatch(self, dispatches: Sequence[Dispatch]) -> None:
        for listener in self._listeners:
            listener.dispatch(dispatches)

    def resync(self) -> None:
        for listener in self._listeners:
            listener.resync()


class Bus(Protocol):
    async def start(self, listeners: Sequence[Listener]) -> None: ...
    async def publish(self, dispatches: Sequence[Dispatch]) -> None: ...
    async def ping(self) -> None: ...
    async def stop(self) -> None: ...


class LocalBus:
    """One process: deliver straight to this process's sockets."""

    def __init__(self) -> None:
        self._listeners: Listeners | None = None

    async def start(self, listeners: Sequence[Listener]) -> None:
        self._listeners = Listeners(listeners)

    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        if dispatches and self._listeners is not None:
            self._listeners.dispatch(dispatches)

    async def ping(self) -> None:
        return None

    async def stop(self) -> None:
        self._listeners = None


class RedisBus:
    """Every process publishes to one Redis channel and delivers what it hears to its sockets.

    A process hears its own publications too, so all processes see one order per channel.
    When Redis is unreachable the publisher delivers locally and the others catch up by
    gap-filling once their subscription is back (`resync`).
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._redis: aioredis.Redis = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        # The subscriber waits for news indefinitely, so it must not have a read timeout.
        self._sub_redis: aioredis.Redis = aioredis.from_url(
            url, socket_connect_timeout=5, health_check_interval=15
        )
        self._listeners: Listeners | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        # Publications waiting for the publisher task, oldest first; it sends all that waited
        # in one PUBLISH, so a write never waits for Redis and the order stays one.
        self._outbox: list[Sequence[Dispatch]] = []
        self._publisher: asyncio.Task[None] | None = None

    async def start(self, listeners: Sequence[Listener]) -> None:
        self._listeners = Listeners(listeners)
        self._task = asyncio.create_task(self._listen(), name="redis-bus")
        # Wait briefly so the first publications of this process are heard; if Redis is down
        # the server still starts and serves its own sockets.
        try:
            await asyncio.wait_for(self._subscribed.wait(), timeout=5)
        except TimeoutError:
            log.warning("redis bus not subscribed yet; serving local sockets only")

    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        """Hand the news to the publisher task and return: the committed write (and the batch
        behind it in the group commit) does not wait for Redis's round trip."""
        if not dispatches:
            return
        self._outbox.append(dispatches)
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.create_task(self._publish_waiting(), name="redis-publisher")

    async def _publish_waiting(self) -> None:
        while self._outbox:
            waiting, self._outbox = self._outbox, []
            news = [d for dispatches in waiting for d in dispatches]
            await self._publish_now(news)

    async def _publish_now(self, dispatches: list[Dispatch]) -> None:
        payload = json.dumps([d.to_json() for d in dispatches], separators=(",", ":"))
        try:
            if not self._subscribed.is_set():
                raise RedisError("not subscribed")
            try:
                await self._redis.publish(CHANNEL, payload)
            except RedisConnectionError:
                # After a Redis restart the pooled connection is dead, and only using it tells.
                # Once more on a fresh one: delivered only locally, the first news after every
                # restart would never reach the other processes (their subscriptions are fine,
                # so nothing makes them look for it).
                await self._redis.publish(CHANNEL, payload)
        except Exception as exc:  # whatever it was, this process's own sockets still get the news
            log.warning("redis publish failed, delivering locally", extra={"error": str(exc)})
            if self._listeners is not None:
                self._listeners.dispatch(dispatches)

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._sub_redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                if backoff > 0.1 and self._listeners is not None:
                    self._listeners.resync()  # we may have missed dispatches while disconnected
                self._subscribed.set()
                backoff = 0.1
                async for message in pubsub.listen():
                    if message.get("type") == "message" and self._listeners is not None:
                        self._hear(message["data"], self._listeners)
            except asyncio.CancelledError:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                log.warning("redis subscription lost", extra={"error": str(exc)})
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    @staticmethod
    def _hear(data: bytes, listeners: Listeners) -> None:
        try:
            dispatches = [Dispatch.from_json(d) for d in json.loads(data)]
        except (ValueError, KeyError, TypeError, IndexError):
            # Say, a process of an older version during a rolling deploy. Dropping the news
            # must not end the subscription; the listeners look again at what they hold.
            log.exception("unreadable dispatch on the bus; resyncing")
            listeners.resync()
            return
        listeners.dispatch(dispatches)

    async def ping(self) -> None:
        await self._redis.ping()

    async def stop(self) -> None:
        if self._publisher is not None:
            try:  # what was committed before the stop still goes out
                await asyncio.wait_for(asyncio.shield(self._publisher), 5)
            except (TimeoutError, asyncio.CancelledError):
                self._publisher.cancel()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._redis.aclose()
        await self._sub_redis.aclose()


def make_bus(redis_url: str) -> Bus:
    return RedisBus(redis_url) if redis_url else LocalBus()
