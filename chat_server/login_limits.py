"""Counting failed logins, per account and address, in Redis when configured (shared by every
process) or in this process's memory.

Three fixed-window counters are kept per failed attempt:

- (account, address): a guesser at one account from one place. The tightest limit; a
  successful login from that address clears it, so an operator who mistyped a few times is
  never locked out by themselves.
- address: one place guessing at many accounts (credential stuffing).
- account: many places guessing at one account — a ceiling far above the pair limit. It does
  not apply to addresses the account has logged in from before (remembered for 30 days), so a
  botnet spraying one account cannot lock its real operator out of their usual places.

A blocked attempt is refused before its password is hashed: guessing costs the server nothing.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .settings import Settings

KNOWN_ADDRESS_SECONDS = 30 * 86400
_PREFIX = "chat:login:"
# INCR, and start the window on the first failure; one round trip, atomic across processes.
_INCR = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


@dataclass(frozen=True)
class Blocked:
    retry_after: int  # seconds until the blocking window ends


class Store(Protocol):
    async def counts(self, keys: list[str]) -> list[tuple[int, int]]: ...  # (count, seconds left)
    async def incr(self, keys: list[str], window: int) -> None: ...
    async def forget(self, key: str) -> None: ...
    async def remember(self, key: str, seconds: int) -> None: ...
    async def known(self, key: str) -> bool: ...
    async def close(self) -> None: ...


class MemoryStore:
    def __init__(self, max_keys: int = 100_000) -> None:
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._known: dict[str, float] = {}
        self._max_keys = max_keys

    async def counts(self, keys: list[str]) -> list[tuple[int, int]]:
        now = time.monotonic()
        result = []
        for key in keys:
            count, until = self._counts.get(key, (0, now))
            result.append((count, max(1, int(until - now + 0.999))) if until > now else (0, 0))
        return result

    async def incr(self, keys: list[str], window: int) -> None:
        now = time.monotonic()
        if len(self._counts) >= self._max_keys:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        for key in keys:
            count, until = self._counts.get(key, (0, now))
            self._counts[key] = (count + 1, until) if until > now else (1, now + window)

    async def forget(self, key: str) -> None:
        self._counts.pop(key, None)

    async def remember(self, key: str, seconds: int) -> None:
        now = time.monotonic()
        if len(self._known) >= self._max_keys:
            self._known = {k: v for k, v in self._known.items() if v > now}
        self._known[key] = now + seconds

    async def known(self, key: str) -> bool:
        return self._known.get(key, 0.0) > time.monotonic()

    async def close(self) -> None:
        return None


class RedisStore:
    def __init__(self, url: str) -> None:
        self._redis: aioredis.Redis = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._incr = self._redis.register_script(_INCR)

    async def counts(self, keys: list[str]) -> list[tuple[int, int]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
                pipe.ttl(key)
            raw = await pipe.execute()
        return [(int(raw[i]) if raw[i] is not None else 0, max(0, int(raw[i + 1])))
                for i in range(0, len(raw), 2)]

    async def incr(self, keys: list[str], window: int) -> None:
        for key in keys:
            await self._incr(keys=[key], args=[window])

    async def forget(self, key: str) -> None:
        await self._redis.delete(key)

    async def remember(self, key: str, seconds: int) -> None:
        await self._redis.set(key, b"1", ex=seconds)

    async def known(self, key: str) -> bool:
        return bool(await self._redis.exists(key))

    async def close(self) -> None:
        await self._redis.aclose()


class FallbackStore:
    """Redis, or while Redis cannot be reached, this process's memory: logins neither fail nor
    go unlimited because Redis is down (the limits are then per process, as without Redis)."""

    def __init__(self, primary: Store) -> None:
        self.primary = primary
        self.memory = MemoryStore()

    async def counts(self, keys: list[str]) -> list[tuple[int, int]]:
        try:
            return await self.primary.counts(keys)
        except (RedisError, OSError):
            return await self.memory.counts(keys)

    async def incr(self, keys: list[str], window: int) -> None:
        try:
            await self.primary.incr(keys, window)
        except (RedisError, OSError):
            await self.memory.incr(keys, window)

    async def forget(self, key: str) -> None:
        await self.memory.forget(key)
        try:
            await self.primary.forget(key)
        except (RedisError, OSError):
            pass

    async def remember(self, key: str, seconds: int) -> None:
        await self.memory.remember(key, seconds)
        try:
            await self.primary.remember(key, seconds)
        except (RedisError, OSError):
            pass

    async def known(self, key: str) -> bool:
        if await self.memory.known(key):
            return True
        try:
            return await self.primary.known(key)
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self.primary.close()


class LoginLimits:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.window = settings.login_window_seconds
        self.per_pair = settings.login_failures_per_account_address
        self.per_address = settings.login_failures_per_address
        self.per_account = settings.login_failures_per_account
        self.store: Store = store or (
            FallbackStore(RedisStore(settings.redis_url)) if settings.redis_url else MemoryStore())

    @staticmethod
    def _keys(account: str, address: str) -> tuple[str, str, str, str]:
        # Hashed: bounded key sizes, and no list of emails sitting in Redis.
        a = hashlib.sha256(account.encode()).hexdigest()[:32]
        ip = hashlib.sha256(address.encode()).hexdigest()[:32]
        return (f"{_PREFIX}pair:{a}:{ip}", f"{_PREFIX}addr:{ip}", f"{_PREFIX}acct:{a}",
                f"{_PREFIX}known:{a}:{ip}")

    async def check(self, account: str, address: str) -> Blocked | None:
        pair, addr, acct, known = self._keys(account, address)
        limits = [(pair, self.per_pair), (addr, self.per_address), (acct, self.per_account)]
        limits = [(k, n) for k, n in limits if n > 0]
        if not limits:
            return None
        counts = await self.store.counts([k for k, _ in limits])
        waits = [left for (key, limit), (count, left) in zip(limits, counts, strict=True)
                 if count >= limit and not (key == acct and await self.store.known(known))]
        return Blocked(max(1, *waits)) if waits else None

    async def failed(self, account: str, address: str) -> None:
        pair, addr, acct, _ = self._keys(account, address)
        await self.store.incr([pair, addr, acct], self.window)

    async def succeeded(self, account: str, address: str) -> None:
        pair, _, _, known = self._keys(account, address)
        await self.store.forget(pair)
        await self.store.remember(known, KNOWN_ADDRESS_SECONDS)

    async def close(self) -> None:
        await self.store.close()
