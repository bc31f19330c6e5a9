"""The webhook queue's writes: claim due deliveries under a lease, record delivered / retry /
failed on the delivery and on its endpoint (its last status, for the admin page)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import aliased

from ..models import WebhookDelivery, WebhookDeliveryState, WebhookEndpoint
from ..models.types import utcnow
from ..runtime import Runtime
from .membership import run

LEASE = timedelta(seconds=60)  # far longer than one request may take (CHAT_WEBHOOK_TIMEOUT ≤ 60 s)
MAX_BACKOFF = 3600.0
DELIVERY = WebhookDelivery.__table__  # type: ignore[attr-defined]
ENDPOINT = WebhookEndpoint.__table__  # type: ignore[attr-defined]
PENDING = WebhookDeliveryState.pending.value


@dataclass
class Claimed:
    """Everything the worker needs to send one delivery."""

    id: int
    endpoint_id: int
    url: str
    secret: str
    event_type: str
    body: str
    attempts: int


def backoff(attempts: int, first: float) -> timedelta:
    """`first` doubling per attempt (capped at an hour), each wait drawn between half and all of
    it, so endpoints that failed together do not all come back at the same moment."""
    ceiling = min(MAX_BACKOFF, first * 2 ** (max(1, attempts) - 1))
    return timedelta(seconds=ceiling * random.uniform(0.5, 1.0))


async def claim_due(rt: Runtime, limit: int) -> list[Claimed]:
    """Due deliveries, leased to this process: a process that dies mid-send frees them when the
    lease ends. Only the oldest pending delivery of each (endpoint, order key) is due, so one
    that waits for its retry holds back the ones written after it."""
    now = utcnow()
    earlier = aliased(DELIVERY)
    waiting_before = exists().where(
        earlier.c.endpoint_id == DELIVERY.c.endpoint_id, earlier.c.order_key == DELIVERY.c.order_key,
        earlier.c.state == PENDING, earlier.c.id < DELIVERY.c.id)
    free = or_(DELIVERY.c.locked_until.is_(None), DELIVERY.c.locked_until < now)
    async with rt.db.read() as s:
        due = [r[0] for r in (await run(s, select(DELIVERY.c.id).where(
            DELIVERY.c.state == PENDING, DELIVERY.c.next_attempt_at <= now, free, ~waiting_before)
            .order_by(DELIVERY.c.next_attempt_at, DELIVERY.c.id).limit(limit))).all()]
    claimed: list[Claimed] = []
    for delivery_id in due:
        async with rt.db.write() as s:
            taken = await run(s, update(DELIVERY).where(DELIVERY.c.id == delivery_id, DELIVERY.c.state == PENDING, free)
                              .values(locked_until=now + LEASE))
            if taken.rowcount != 1:
                continue  # another process got there first
            row = (await run(s, select(
                DELIVERY.c.id, DELIVERY.c.endpoint_id, ENDPOINT.c.url, ENDPOINT.c.secret, DELIVERY.c.event_type,
                DELIVERY.c.body, DELIVERY.c.attempts, ENDPOINT.c.enabled, ENDPOINT.c.events,
            ).join(ENDPOINT, ENDPOINT.c.id == DELIVERY.c.endpoint_id).where(DELIVERY.c.id == delivery_id))).one()
            wanted = row.event_type == "webhook.test" or row.event_type in (row.events or [])
            if not row.enabled or not wanted:
                # Changed on another process after the event was queued: not sent, and said why.
                await run(s, update(DELIVERY).where(DELIVERY.c.id == delivery_id).values(
                    state=WebhookDeliveryState.cancelled.value, locked_until=None, finished_at=now,
                    last_error="the endpoint was disabled or no longer wants this event"))
                continue
            claimed.append(Claimed(row.id, row.endpoint_id, row.url, row.secret, row.event_type, row.body, row.attempts))
    return claimed


async def _record(rt: Runtime, c: Claimed, values: dict[str, Any], status_code: int | None, error: str | None,
                  now: datetime) -> None:
    async with rt.db.write() as s:
        # Only while it is pending: a late answer never overwrites the outcome of a resend by
        # another process whose lease came after ours ran out.
        await run(s, update(DELIVERY).where(and_(DELIVERY.c.id == c.id, DELIVERY.c.state == PENDING))
                  .values(locked_until=None, last_status_code=status_code, last_error=error, **values))
        await run(s, update(ENDPOINT).where(ENDPOINT.c.id == c.endpoint_id).values(
            last_attempt_at=now, last_status_code=status_code, last_error=error))


async def do_mark_delivered(rt: Runtime, c: Claimed, status_code: int) -> None:
    now = utcnow()
    await _record(rt, c, {"state": WebhookDeliveryState.delivered.value, "attempts": c.attempts + 1,
                          "finished_at": now}, status_code, None, now)


async def do_mark_retry(rt: Runtime, c: Claimed, status_code: int | None, error: str) -> bool:
    """Try again after a backoff, or fail it after the last attempt; True when it gave up."""
    now, attempts = utcnow(), c.attempts + 1
    error = error[:1000]
    if attempts >= rt.settings.webhook_max_attempts:
        await _record(rt, c, {"state": WebhookDeliveryState.failed.value, "attempts": attempts, "finished_at": now},
                      status_code, f"gave up after {attempts} attempts: {error}"[:1000], now)
        return True
    await _record(rt, c, {"attempts": attempts,
                          "next_attempt_at": now + backoff(attempts, rt.settings.webhook_retry_seconds)},
                  status_code, error, now)
    return False


KEEP_FINISHED = timedelta(days=7)


async def do_prune_finished(rt: Runtime, batch: int = 1000) -> int:
    """Forget delivered, failed and cancelled deliveries after a week (their bodies hold
    contacts' data); the admin page shows the recent ones. Small batches, so the one SQLite
    writer is never held for long."""
    cutoff, removed = utcnow() - KEEP_FINISHED, 0
    while True:
        async with rt.db.write() as s:
            ids = select(DELIVERY.c.id).where(DELIVERY.c.state != PENDING, DELIVERY.c.finished_at < cutoff).limit(batch)
            gone: int = (await run(s, delete(DELIVERY).where(DELIVERY.c.id.in_(ids)))).rowcount
        removed += gone
        if gone < batch:
            return removed
