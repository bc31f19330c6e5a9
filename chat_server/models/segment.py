"""Segments: saved, named contact definitions, and who is in each right now."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import JsonColumn, UTCDateTime, utcnow


class Segment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    name: str = Field(max_length=200, unique=True)
    description: str = Field(default="", max_length=1000)
    # behaviour.segments.Group as JSON: the one definition counts, lists and the live check use.
    definition: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn, nullable=False))
    # Which shipped preset this started from (editable like any other), if any.
    preset: str | None = Field(default=None, max_length=50)
    created_by_id: int | None = Field(default=None, foreign_key="operator.id", sa_type=Int64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class SegmentMembership(SQLModel, table=True):
    """The contact is in the segment since `entered_at`; the row goes when they leave."""

    __tablename__ = "segment_membership"
    __table_args__ = (
        UniqueConstraint("segment_id", "contact_id", name="uq_segment_membership"),
        Index("ix_segment_membership_contact", "contact_id"),
    )

    # A key of its own, as every table has: a person's rows are found (export, deletion) by it.
    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    segment_id: int = Field(foreign_key="segment.id", sa_type=Int64)
    contact_id: int = Field(foreign_key="contact.id", sa_type=Int64)
    entered_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
