"""Reading webhooks: the endpoints (never their whole secret) and an endpoint's recent deliveries."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select

from ..db import Database
from ..models import WebhookDelivery, WebhookDeliveryState, WebhookEndpoint


async def endpoints(db: Database) -> list[tuple[WebhookEndpoint, int]]:
    """Every endpoint, with how many of its deliveries are waiting."""
    async with db.read() as s:
        rows = list((await s.exec(select(WebhookEndpoint).order_by(col(WebhookEndpoint.id)))).all())
        waiting = dict((await s.exec(
            select(WebhookDelivery.endpoint_id, func.count())
            .where(WebhookDelivery.state == WebhookDeliveryState.pending)
            .group_by(col(WebhookDelivery.endpoint_id)))).all())
    return [(e, waiting.get(e.id or 0, 0)) for e in rows]


async def endpoint(db: Database, endpoint_id: int) -> WebhookEndpoint | None:
    async with db.read() as s:
        return await s.get(WebhookEndpoint, endpoint_id)


async def deliveries(db: Database, endpoint_id: int, limit: int) -> list[WebhookDelivery]:
    """The endpoint's most recent deliveries, newest first."""
    async with db.read() as s:
        return list((await s.exec(
            select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(col(WebhookDelivery.id).desc()).limit(limit))).all())
