"""Triggers: automatic messages that fire on behaviour, and each send they scheduled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import JsonColumn, UTCDateTime, utcnow


class Trigger(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    name: str = Field(max_length=200)
    # false: paused (nothing new is matched, scheduled sends wait for it to be switched on again).
    enabled: bool = False
    # triggers.definition.Definition as JSON, minus name and enabled.
    definition: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn, nullable=False))
    # Bumped on each edit, so a send can tell which wording it was scheduled under.
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    created_by: int | None = Field(default=None, foreign_key="operator.id", sa_type=Int64)
    # Deleted triggers keep their sends: the results stay readable.
    deleted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class TriggerSend(SQLModel, table=True):
    """One trigger × contact × occurrence: the unit of exactly-once. The occurrence names what
    fired it in a way the trigger's limit needs ("once", a period bucket, an event id), so the
    unique key itself refuses a second send the limit forbids."""

    __tablename__ = "trigger_send"
    __table_args__ = (
        UniqueConstraint("trigger_id", "contact_id", "occurrence", name="uq_trigger_send_occurrence"),
        Index("ix_trigger_send_due", "state", "due_at"),
        Index("ix_trigger_send_trigger_matched", "trigger_id", "matched_at"),
        Index("ix_trigger_send_message", "message_id"),
        Index("ix_trigger_send_contact", "contact_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    trigger_id: int = Field(foreign_key="trigger.id", sa_type=Int64)
    contact_id: int = Field(foreign_key="contact.id", sa_type=Int64)
    occurrence: str = Field(max_length=200)
    variant: str = Field(max_length=50)  # a variant's name, or "control"
    state: str = Field(default="scheduled", sa_type=String(20))  # scheduled|sent|cancelled|failed|control
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    matched_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    due_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # A worker owns the row until lease_until; after that (a crash) another may take it.
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    channel: str | None = Field(default=None, sa_type=String(20))  # widget | email | telegram | vk
    message_id: int | None = Field(default=None, sa_type=Int64)
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    clicked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    replied_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    unsubscribed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    goal_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    revenue: float | None = None
