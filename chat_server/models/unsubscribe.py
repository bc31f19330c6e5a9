"""Unsubscriptions: a contact asked for no more automatic messages on a channel (the email's
unsubscribe link or its one-click List-Unsubscribe). Automatic sends there are refused after."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import UTCDateTime, utcnow


class Unsubscribe(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("contact_id", "channel", name="uq_unsubscribe_contact_channel"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    contact_id: int = Field(foreign_key="contact.id", index=True, sa_type=Int64)
    channel: str = Field(sa_type=String(20))
    # The automatic message whose link was used (None when set otherwise).
    message_id: int | None = Field(default=None, sa_type=Int64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
