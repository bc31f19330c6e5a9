"""Channel instances (a bot, a community, a mailbox), the outbound queue, used link tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, String
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import JsonColumn, UTCDateTime, utcnow


class ChannelInstance(SQLModel, table=True):
    __tablename__ = "channel_instance"

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    channel: str = Field(sa_type=String(20), index=True)
    name: str = Field(max_length=200)
    # The adapter's settings, secrets included; the API only ever shows secrets masked.
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn, nullable=False))
    enabled: bool = True
    # Where polling stopped (Telegram offset, VK ts, IMAP uidvalidity:uid), so a restart
    # neither refetches nor skips.
    cursor: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # How it is doing, as its polling loop and its updates report it. Written apart from
    # `updated_at`, whose change restarts the loop.
    last_update_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_ok_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_error: str | None = Field(default=None, max_length=1000)
    last_error_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class JobState(StrEnum):
    queued = "queued"
    done = "done"
    failed = "failed"


class OutboundJob(SQLModel, table=True):
    """One reply waiting to go out on its channel. Lives in the database so a restart
    loses nothing; `locked_until` is a lease so two processes never send the same job."""

    __tablename__ = "outbound_job"
    __table_args__ = (Index("ix_outbound_job_due", "state", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    message_id: int = Field(foreign_key="message.id", unique=True, sa_type=Int64)
    instance_id: int = Field(sa_type=Int64)
    state: JobState = Field(default=JobState.queued, sa_type=String(20))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_error: str | None = Field(default=None, max_length=1000)
    # A reply sent in parts: the channel ids of the parts that left, so a retry skips them.
    parts: list[str] = Field(default_factory=list, sa_column=Column(JsonColumn, nullable=False, server_default="[]"))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class UsedLinkToken(SQLModel, table=True):
    """A "continue in Telegram / VK" token that was spent: each works once."""

    __tablename__ = "used_link_token"

    nonce: str = Field(primary_key=True, max_length=40)
    contact_id: int = Field(sa_type=Int64)
    used_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
