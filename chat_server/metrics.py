"""Prometheus metrics, one registry per app so tests can build several apps."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.open_sockets = Gauge(
            "chat_open_sockets", "Open WebSocket connections", ["kind"], registry=self.registry
        )
        self.messages_in = Counter(
            "chat_messages_in_total", "Messages received from contacts", ["channel"], registry=self.registry
        )
        self.messages_out = Counter(
            "chat_messages_out_total", "Messages written by operators and bots", ["channel", "kind"],
            registry=self.registry,
        )
        self.frames_delivered = Counter(
            "chat_frames_delivered_total", "Frames handed to sockets", registry=self.registry
        )
        self.delivery_latency = Histogram(
            "chat_delivery_latency_seconds", "From publication after commit to the socket queue",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )
        self.slow_consumers = Counter(
            "chat_slow_consumers_total", "Sockets closed because they stopped reading", registry=self.registry
        )

        self.db_statements = Counter(
            "chat_db_statements_total", "SQL statements sent to the database, transaction control included",
            registry=self.registry,
        )
        self.backfills = Counter(
            "chat_backfills_total", "Database reads to resume a socket or fill a hole", registry=self.registry
        )

    def count_statements(self, engines: Iterable[AsyncEngine]) -> None:
        """Count what reaches the database: how the benchmarks price a reconnect."""
        for engine in set(engines):
            event.listen(engine.sync_engine, "before_cursor_execute", self._statement)

    def _statement(self, *_args: Any) -> None:
        self.db_statements.inc()

    def delivered(self, recipients: int, published_at: float) -> None:
        self.frames_delivered.inc(recipients)
        self.delivery_latency.observe(max(0.0, time.time() - published_at))
