"""Token buckets per key (visitor, IP), kept in this process's memory."""

from __future__ import annotations

import time


class RateLimiter:
    """`rate_per_minute` tokens per minute, bursting up to a minute's worth."""

    def __init__(self, rate_per_minute: int, max_keys: int = 100_000) -> None:
        self.capacity = float(rate_per_minute)
        self.refill_per_second = rate_per_minute / 60.0
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        if self.capacity <= 0:
            return True  # limit switched off
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.refill_per_second)
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._forget_full(now)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True

    def _forget_full(self, now: float) -> None:
        # Buckets that refilled completely carry no information: drop them to bound memory.
        full_after = self.capacity / self.refill_per_second
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
