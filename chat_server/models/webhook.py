"""Outgoing webhooks: the endpoints admins register, and one delivery per endpoint and event."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String, Text
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import JsonColumn, UTCDateTime, utcnow


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    name: str = Field(max_length=200)
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_column=Column(JsonColumn, nullable=False))
    enabled: bool = True
    # Kept as given, not hashed: every delivery is signed with it. Shown once, at creation
    # and rotation; the API shows only its first characters afterwards.
    secret: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # The last attempt of any of its deliveries, for the admin page.
    last_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    last_status_code: int | None = Field(default=None, sa_type=Int64)
    last_error: str | None = Field(default=None, max_length=1000)


class DeliveryState(StrEnum):
    pending = "pending"  # waiting for its first try or its next one
    delivered = "delivered"  # the endpoint answered 2xx
    failed = "failed"  # every try failed
    cancelled = "cancelled"  # the endpoint was disabled or stopped wanting this event before it left


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint. Written in the transaction of the change it reports, so an
    event is queued exactly when its change is committed; `locked_until` is a lease so two
    processes never send the same delivery."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
        # The worker sends a (endpoint, order_key)'s deliveries one at a time, in id order.
        Index("ix_webhook_delivery_order", "endpoint_id", "order_key", "id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    endpoint_id: int = Field(foreign_key="webhook_endpoint.id", sa_type=Int64)
    event_id: str = Field(max_length=40)  # the same for every endpoint the event went to
    event_type: str = Field(max_length=40)
    # Events with the same key reach an endpoint in the order they were written: the contact
    # ("contact:12") for everything about one person and their conversation.
    order_key: str = Field(max_length=60)
    # The exact bytes that are signed and sent, so every retry sends the same body.
    body: str = Field(sa_column=Column(Text, nullable=False))
    state: DeliveryState = Field(default=DeliveryState.pending, sa_type=String(20))
    attempts: int = Field(default=0, sa_type=Int64)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    last_status_code: int | None = Field(default=None, sa_type=Int64)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
