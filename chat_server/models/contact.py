"""The contact ("user card"): one per person, whatever channels they use."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import JsonColumn, UTCDateTime, utcnow


class IdentityKind(StrEnum):
    visitor = "visitor"  # anonymous widget id
    user_id = "user_id"  # the site's own id for a logged-in user
    email = "email"
    phone = "phone"
    telegram = "telegram"
    vk = "vk"


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320, index=True)
    phone: str | None = Field(default=None, max_length=50)
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn, nullable=False))
    first_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    first_referrer: str | None = Field(default=None, max_length=2000)
    first_landing_page: str | None = Field(default=None, max_length=2000)
    first_utm: dict[str, str] = Field(default_factory=dict, sa_column=Column(JsonColumn, nullable=False))
    sessions: int = 0
    score: int = 0
    # A1…E4 (profile fit × engagement) when grading is on.
    grade: str | None = Field(default=None, max_length=2)
    # Set on the contact that was merged away; it keeps no identities, events or messages.
    merged_into_id: int | None = Field(default=None, foreign_key="contact.id", sa_type=Int64, index=True)


class ContactIdentity(SQLModel, table=True):
    __tablename__ = "contact_identity"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_identity_kind_value"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    kind: IdentityKind = Field(sa_type=String(20))
    value: str = Field(max_length=320)
    contact_id: int = Field(foreign_key="contact.id", index=True, sa_type=Int64)
    # How this identity came to the contact: "first visit", "identify", "merge: ...".
    linked_reason: str = Field(default="", max_length=200)
    # Visitor identities: tokens carry the version they were issued under; revoking them all
    # (the widget's shutdown) is raising it.
    token_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # "blocked" when the person blocked us on this channel (Telegram bot blocked, VK messages
    # denied): replies there cannot arrive, and the composer says so.
    state: str | None = Field(default=None, max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ContactMerge(SQLModel, table=True):
    """Audit record of one merge: who survived, who was absorbed, why and through which identity."""

    __tablename__ = "contact_merge"

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    survivor_id: int = Field(foreign_key="contact.id", index=True, sa_type=Int64)
    merged_id: int = Field(foreign_key="contact.id", sa_type=Int64)
    reason: str = Field(max_length=200)
    identity_kind: str | None = Field(default=None, sa_type=String(20))
    identity_value: str | None = Field(default=None, max_length=320)
    operator_id: int | None = Field(default=None, foreign_key="operator.id", sa_type=Int64)
    # What the absorbed contact looked like, so a wrong merge can be understood later.
    merged_snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Event(SQLModel, table=True):
    """Something the contact did: page viewed, session started, or a site's own event."""

    __table_args__ = (
        UniqueConstraint("external_id", name="uq_event_external_id"),
        # A segment's event conditions and the live check read one contact's events by name and time.
        Index("ix_event_contact_name_time", "contact_id", "name", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    contact_id: int = Field(foreign_key="contact.id", index=True, sa_type=Int64)
    name: str = Field(max_length=200, index=True)
    properties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn, nullable=False))
    url: str | None = Field(default=None, max_length=2000)
    occurred_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))
    # The sender's own id for the event (imports, backend batches): a resend stores nothing twice.
    external_id: str | None = Field(default=None, max_length=200)
