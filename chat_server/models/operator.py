"""Operators (support, sales, admins) and their login sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import UTCDateTime, utcnow


class Role(StrEnum):
    admin = "admin"
    operator = "operator"
    sales = "sales"  # reads every contact and conversation, never replies or changes them


class Availability(StrEnum):
    online = "online"
    away = "away"


class AvailabilityOnLogin(StrEnum):
    online = "online"  # logging in means being there to answer
    last = "last"  # keep whatever they were when they left


class Operator(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320, unique=True, index=True)
    role: Role = Field(default=Role.operator, sa_type=String(20))
    password_hash: str = Field(max_length=300)
    availability: Availability = Field(default=Availability.away, sa_type=String(20))
    is_active: bool = True
    # The inbox's language for this operator: "en", "ru", or None to follow their browser.
    language: str | None = Field(default=None, max_length=5)
    availability_on_login: AvailabilityOnLogin = Field(
        default=AvailabilityOnLogin.online, sa_type=String(10), sa_column_kwargs={"server_default": "online"})
    # When an inbox socket of theirs was last known open (refreshed while one is, by every
    # process): online operators with none open for CHAT_AWAY_AFTER_MINUTES become away.
    inbox_seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class OperatorSession(SQLModel, table=True):
    __tablename__ = "operator_session"

    # Only a hash of the bearer token is stored: a leaked table does not log anyone in.
    token_hash: str = Field(primary_key=True, max_length=64)
    operator_id: int = Field(foreign_key="operator.id", index=True, sa_type=Int64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
