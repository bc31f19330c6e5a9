"""Bodies and views of the inbox's own REST (saved replies, card edits, contacts table, reports)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from ..behaviour.filters import ContactFilter, Storable
from ..models.ids import RowId
from .schemas import Body, EventView


class SavedReplyBody(Body):
    shortcut: Annotated[str, Field(min_length=1, max_length=51)]
    text: Annotated[str, Field(min_length=1, max_length=10_000)]


class SavedReplyUpdateBody(Body):
    shortcut: Annotated[str, Field(min_length=1, max_length=51)] | None = None
    text: Annotated[str, Field(min_length=1, max_length=10_000)] | None = None


class SavedReplyView(BaseModel):
    id: int
    shortcut: str
    text: str
    created_by_id: int | None
    updated_at: datetime


class SavedReplyList(BaseModel):
    items: list[SavedReplyView]


class ContactUpdateBody(Body):
    """Fields left out stay as they are; null or "" clears name, email or phone. Properties are
    merged key by key; a key set to null is removed."""

    name: Annotated[str, Field(max_length=200)] | None = None
    email: Annotated[str, Field(max_length=320)] | None = None
    phone: Annotated[str, Field(max_length=50)] | None = None
    properties: Annotated[dict[Annotated[str, Field(min_length=1, max_length=100)], Any], Field(max_length=50)] | None = None


class EventQuery(Body):
    name: Annotated[str, Field(max_length=200), Storable] | None = None
    q: Annotated[str, Field(max_length=200), Storable] | None = None
    before_id: RowId | None = None
    limit: Annotated[str, Field(pattern=r"^[0-9]{1,3}$")] = "50"


class EventPage(BaseModel):
    items: list[EventView]
    names: list[str]
    next_before_id: int | None


class ProactiveView(BaseModel):
    message_id: int
    text: str
    channel: str
    delivery_state: str
    sent_at: datetime
    replied_at: datetime | None
    reply_text: str | None


class UnsubscribedView(BaseModel):
    channel: str
    at: datetime


class ProactiveList(BaseModel):
    items: list[ProactiveView]
    # Channels the contact asked for no more automatic messages on (the email's unsubscribe link).
    unsubscribed: list[UnsubscribedView] = []


CONTACT_COLUMNS = (
    "id", "name", "email", "phone", "score", "sessions", "first_seen_at", "last_seen_at", "first_referrer",
    "first_landing_page",
)


class ContactSearchBody(Body):
    filter: ContactFilter = Field(default_factory=ContactFilter)
    segment_id: RowId | None = None
    q: Annotated[str, Field(max_length=200), Storable] | None = None
    cursor: RowId | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50


Column = Annotated[str, Field(min_length=1, max_length=120)]


class ContactExportBody(Body):
    filter: ContactFilter = Field(default_factory=ContactFilter)
    segment_id: RowId | None = None
    q: Annotated[str, Field(max_length=200), Storable] | None = None
    columns: Annotated[list[Column], Field(min_length=1, max_length=50)] = Field(
        default_factory=lambda: ["id", "name", "email", "phone"])

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: list[str]) -> list[str]:
        for column in columns:
            if column in CONTACT_COLUMNS or (column.startswith(("property:", "utm:")) and len(column.split(":", 1)[1]) > 0):
                continue
            raise ValueError(f"unknown column {column!r}: one of {', '.join(CONTACT_COLUMNS)}, property:KEY, utm:KEY")
        return columns


ReportDay = Annotated[date, Field(ge=date(1970, 1, 1), le=date(9999, 12, 30))]


class ReportQuery(Body):
    start: ReportDay | None = None
    end: ReportDay | None = None


class StatsView(BaseModel):
    count: int
    median_seconds: float | None
    p90_seconds: float | None


class VolumeDay(BaseModel):
    day: date
    channels: dict[str, int]


class OperatorTimesView(BaseModel):
    operator_id: int
    name: str
    first_response: StatsView
    resolution: StatsView


class ReportView(BaseModel):
    start: date
    end: date
    cycles: int
    unanswered: int
    volume: list[VolumeDay]
    first_response: StatsView
    resolution: StatsView
    operators: list[OperatorTimesView]

