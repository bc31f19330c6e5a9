"""Files people send: stored once by content, described by one row per upload."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import UTCDateTime, utcnow


class Attachment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    sha256: str = Field(max_length=64, index=True)
    name: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size: int
    # Relative to the storage directory; two uploads of the same bytes share one file.
    path: str = Field(max_length=300)
    # Who uploaded it: a contact (visitor, channel) or an operator.
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True, sa_type=Int64)
    operator_id: int | None = Field(default=None, foreign_key="operator.id", sa_type=Int64)
    # Set when a message the contact may see carries it: that contact may then download it.
    conversation_id: int | None = Field(default=None, index=True, sa_type=Int64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
