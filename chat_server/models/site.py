"""The site the widget is embedded in: its key, allowed origins, identity secret, look and texts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from .ids import Int64
from .types import JsonColumn, UTCDateTime, utcnow


class SiteSettings(SQLModel, table=True):
    __tablename__ = "site_settings"

    id: int | None = Field(default=None, primary_key=True, sa_type=Int64)
    # Public: the widget snippet carries it (data-site="...").
    site_key: str = Field(max_length=64, unique=True)
    name: str = Field(default="", max_length=200)
    allowed_origins: list[str] = Field(default_factory=list, sa_column=Column(JsonColumn, nullable=False))
    # HMAC key for identify(user_hash); never sent back in full.
    identity_secret: str | None = Field(default=None, max_length=200)
    # {"ru": {"title": ...}, "en": {...}}: overrides of the widget's built-in texts.
    texts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumn, nullable=False))
    color: str = Field(default="#2563eb", max_length=20)
    language: str = Field(default="auto", max_length=10)  # auto (from the browser), ru, en
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # Automatic (trigger) messages one contact may get per day, across all triggers and channels.
    auto_messages_per_day: int = Field(default=3, sa_column_kwargs={"server_default": "3"})
    # The site's own zone (IANA), for triggers' working hours given as "site".
    timezone: str = Field(default="UTC", max_length=64, sa_column_kwargs={"server_default": "UTC"})
