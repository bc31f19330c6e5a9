"""Saved replies: canned answers operators insert with `/shortcut` in the composer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import UTCDateTime, utcnow


class SavedReply(SQLModel, table=True):
    __tablename__ = "saved_reply"

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    # What the operator types after "/": unique, so one shortcut always means one text.
    shortcut: str = Field(max_length=50, unique=True, index=True)
    text: str = Field(max_length=10_000)
    created_by_id: int | None = Field(default=None, foreign_key="operator.id", sa_type=Int64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
