"""The one conversation of each contact and the messages in it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import JsonColumn, UTCDateTime, utcnow


class Status(StrEnum):
    open = "open"
    snoozed = "snoozed"
    closed = "closed"


class Channel(StrEnum):
    widget = "widget"
    telegram = "telegram"
    vk = "vk"
    email = "email"
    internal = "internal"  # notes and system lines, never sent anywhere


class Direction(StrEnum):
    inbound = "inbound"  # from the contact
    outbound = "outbound"  # to the contact
    internal = "internal"


class Kind(StrEnum):
    text = "text"
    note = "note"  # private: operators only
    system = "system"  # assigned, closed, merged ...: operators only
    automatic = "automatic"  # sent by a trigger or bot


class AuthorType(StrEnum):
    contact = "contact"
    operator = "operator"
    bot = "bot"
    system = "system"


class DeliveryState(StrEnum):
    pending = "pending"
    sent = "sent"
    delivered = "delivered"
    read = "read"
    failed = "failed"


class Conversation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    contact_id: int = Field(foreign_key="contact.id", unique=True, sa_type=Int64)
    status: Status = Field(default=Status.open, sa_type=String(20), index=True)
    snoozed_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    assignee_id: int | None = Field(default=None, foreign_key="operator.id", index=True, sa_type=Int64)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JsonColumn, nullable=False))
    last_activity_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))
    # Every message gets the next `seq`; messages the contact may see also get the next
    # `public_seq`, so a visitor's stream has no holes where private notes are.
    last_seq: int = Field(default=0, sa_type=Int64)
    last_public_seq: int = Field(default=0, sa_type=Int64)
    # Unread state: how far operators (any of them) and the contact have read.
    last_inbound_seq: int = Field(default=0, sa_type=Int64)
    operator_read_seq: int = Field(default=0, sa_type=Int64)
    operator_read_public_seq: int = Field(default=0, sa_type=Int64)  # the same point, in the contact's numbering
    contact_read_public_seq: int = Field(default=0, sa_type=Int64)
    last_inbound_channel: Channel | None = Field(default=None, sa_type=String(20))
    # Bumped when a merge renumbers the thread: clients with an older epoch reload it.
    epoch: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Message(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_message_seq"),
        UniqueConstraint("conversation_id", "client_msg_id", name="uq_message_client_id"),
        UniqueConstraint("channel", "external_id", name="uq_message_external_id"),
        Index("ix_message_public_seq", "conversation_id", "public_seq"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    conversation_id: int = Field(foreign_key="conversation.id", sa_type=Int64)
    seq: int = Field(sa_type=Int64)
    public_seq: int | None = Field(default=None, sa_type=Int64)
    channel: Channel = Field(sa_type=String(20))
    direction: Direction = Field(sa_type=String(20))
    kind: Kind = Field(default=Kind.text, sa_type=String(20))
    author_type: AuthorType = Field(sa_type=String(20))
    author_id: int | None = Field(default=None, sa_type=Int64)
    # Kept as it was when sent: a renamed operator does not rewrite history.
    author_name: str | None = Field(default=None, max_length=200)
    text: str = ""
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JsonColumn, nullable=False))
    client_msg_id: str | None = Field(default=None, max_length=100)
    external_id: str | None = Field(default=None, max_length=200)
    delivery_state: DeliveryState = Field(default=DeliveryState.sent, sa_type=String(20))
    delivery_error: str | None = Field(default=None, max_length=1000)
    # Which bot / community / mailbox carried it: replies leave through the same one.
    channel_instance_id: int | None = Field(default=None, sa_type=Int64)
    # Channel details kept for threading and for the record (email subject, Message-IDs,
    # the full original text before quotes were cut, edits).
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn, nullable=False, server_default="{}"))
    # What a system line records ("closed", "reopened", "assigned", ...), so reports can read
    # the thread's history without parsing the sentence shown to people.
    system_event: str | None = Field(default=None, max_length=30)
    # Proactive messages: "chat" pops the conversation open, "card" shows a popup card.
    display: str | None = Field(default=None, max_length=10)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
