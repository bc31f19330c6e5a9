"""Every event and property name the site has sent: its type, how often, when last."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import UTCDateTime, utcnow


class DataName(SQLModel, table=True):
    __tablename__ = "data_name"
    __table_args__ = (UniqueConstraint("kind", "name", name="uq_data_name_kind_name"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    kind: str = Field(max_length=10)  # "event" or "property"
    name: str = Field(max_length=200)
    # number / text / boolean / date / list / object (events: "event")
    type: str = Field(default="", max_length=10)
    count: int = Field(default=0, sa_type=Int64)  # events of a busy name pass 2^31
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
