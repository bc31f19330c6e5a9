"""A trigger's definition: when it fires, to whom, how, with which limits, and its goal.

Plain data (pydantic, JSON in and out), stored in `trigger.definition` and validated on the way
in, so a bad definition is a clear 422 naming the field, never a failure at send time.
The audience filter is the segment builder's Group (behaviour/segments.py): one language of
conditions for segments, counts and triggers.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, Field, field_validator, model_validator

from ..behaviour.filters import PropertyCondition, PropertyKey, Storable, _Strict
from ..behaviour.segments import Group
from ..models.ids import RowId
from .templates import TemplateError, parse_template

MAX_DELAY_SECONDS = 30 * 86_400
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHANNELS = ("widget_chat", "widget_popup", "lead_form", "email", "telegram", "vk", "best_available")
CONTROL = "control"
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")

EventName = Annotated[str, Field(min_length=1, max_length=200), Storable]
UrlPart = Annotated[str, Field(min_length=1, max_length=500), Storable]
Where = Annotated[list[PropertyCondition], Field(max_length=10)]


def _template(text: str) -> str:
    try:
        parse_template(text)
    except TemplateError as exc:
        raise ValueError(f"the template does not parse: {exc}") from exc
    return text


Template = Annotated[str, Storable, AfterValidator(_template)]


# --- when -----------------------------------------------------------------------------------

class EventWhen(_Strict):
    """Event E (on pages whose URL contains `url_contains`, with properties meeting `where`)
    happens; with `count`, the count-th such event within `within_minutes`."""

    type: Literal["event"] = "event"
    event: EventName
    where: Where = Field(default_factory=list)
    url_contains: UrlPart | None = None
    count: Annotated[int, Field(ge=1, le=1000)] = 1
    within_minutes: Annotated[int, Field(ge=1, le=43_200)] | None = None


class SegmentWhen(_Strict):
    type: Literal["segment_entered", "segment_left"]
    segment_id: RowId


class PageTimeWhen(_Strict):
    """A page whose URL contains `url_contains` is viewed, and the visitor is still on it (and
    online) `seconds` later."""

    type: Literal["page_time"] = "page_time"
    url_contains: UrlPart
    seconds: Annotated[int, Field(ge=1, le=3600)]


class ExitIntentWhen(_Strict):
    type: Literal["exit_intent"] = "exit_intent"
    url_contains: UrlPart | None = None


class PropertyChangedWhen(_Strict):
    type: Literal["property_changed"] = "property_changed"
    property: PropertyKey


class InactivityWhen(_Strict):
    """No event E for `days` days (after at least one): checked by the periodic sweep."""

    type: Literal["inactivity"] = "inactivity"
    event: EventName
    days: Annotated[int, Field(ge=1, le=3650)]


class DatePropertyWhen(_Strict):
    """The date in property P (YYYY-MM-DD…) shifted by `offset_days` is today; `annual`: every
    year on its anniversary (birthdays, renewals)."""

    type: Literal["date_property"] = "date_property"
    property: PropertyKey
    offset_days: Annotated[int, Field(ge=-365, le=365)] = 0
    annual: bool = False


class EmailsNotOpenedWhen(_Strict):
    type: Literal["emails_not_opened"] = "emails_not_opened"
    count: Annotated[int, Field(ge=1, le=20)]


When = Annotated[
    EventWhen | SegmentWhen | PageTimeWhen | ExitIntentWhen | PropertyChangedWhen | InactivityWhen
    | DatePropertyWhen | EmailsNotOpenedWhen,
    Field(discriminator="type"),
]
SWEPT = ("inactivity", "date_property", "emails_not_opened")


# --- to whom, how ---------------------------------------------------------------------------

class Audience(_Strict):
    filter: Group | None = None
    online_now: bool = False
    has_channel: Literal["widget", "email", "telegram", "vk"] | None = None


class Sender(_Strict):
    operator_id: RowId | None = None
    bot_name: Annotated[str, Field(min_length=1, max_length=100), Storable] = "Bot"


class Form(_Strict):
    field: Literal["email", "phone"]
    button: Annotated[str, Field(min_length=1, max_length=50), Storable] = "Send"


class Variant(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=50), Storable]
    weight: Annotated[int, Field(ge=1, le=100)] = 100
    text: Annotated[Template, Field(min_length=1, max_length=5000)]
    subject: Annotated[Template, Field(max_length=200)] | None = None
    form: Form | None = None

    @field_validator("name")
    @classmethod
    def _not_control(cls, name: str) -> str:
        if name.strip().lower() == CONTROL:
            raise ValueError("'control' names the control group, not a variant")
        return name


class Limits(_Strict):
    frequency: Literal["once", "once_per_period", "every_time"] = "once"
    period_hours: Annotated[int, Field(ge=1, le=8760)] = 24
    skip_if_live_conversation: bool = True


def _hhmm(value: str) -> int:
    match = _HHMM.match(value)
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise ValueError(f"{value!r} is not a time HH:MM (00:00 to 24:00)")
    return int(match.group(1)) * 60 + int(match.group(2))


Interval = Annotated[list[Annotated[str, Field(max_length=5)]], Field(min_length=2, max_length=2)]


class Hours(_Strict):
    """Opening hours: sends outside them wait for the next opening. The zone is the site's,
    the contact's own (reported by the widget), or a named IANA zone."""

    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "site"
    days: dict[str, Annotated[list[Interval], Field(max_length=4)]]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        if zone in ("site", "contact"):
            return zone
        if zone not in available_timezones():
            raise ValueError(f"{zone!r} is not 'site', 'contact' or an IANA time zone such as 'Europe/Moscow'")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{zone!r} is not a known time zone") from exc
        return zone

    @field_validator("days")
    @classmethod
    def _days(cls, days: dict[str, list[list[str]]]) -> dict[str, list[list[str]]]:
        for day, intervals in days.items():
            if day not in DAYS:
                raise ValueError(f"{day!r} is not a day: use {', '.join(DAYS)}")
            for start, end in intervals:
                if _hhmm(start) >= _hhmm(end):
                    raise ValueError(f"{day}: {start}–{end} ends before it starts")
        if not any(days.values()):
            raise ValueError("open at least one interval on one day (or give no hours at all)")
        return days

    def minutes(self, day: str) -> list[tuple[int, int]]:
        return sorted((_hhmm(a), _hhmm(b)) for a, b in self.days.get(day, []))


class Goal(_Strict):
    event: EventName
    where: Where = Field(default_factory=list)
    within_hours: Annotated[int, Field(ge=1, le=8760)] = 72
    revenue_property: PropertyKey | None = None


# --- the whole ------------------------------------------------------------------------------

class Definition(_Strict):
    """Everything but the name and the switch (those are columns of their own)."""

    when: When
    audience: Audience = Field(default_factory=Audience)
    delay_seconds: Annotated[int, Field(ge=0, le=MAX_DELAY_SECONDS)] = 0
    channel: Literal["widget_chat", "widget_popup", "lead_form", "email", "telegram", "vk", "best_available"] = "widget_chat"
    sender: Sender = Field(default_factory=Sender)
    variants: Annotated[list[Variant], Field(min_length=1, max_length=5)]
    control_percent: Annotated[int, Field(ge=0, le=90)] = 0
    limits: Limits = Field(default_factory=Limits)
    hours: Hours | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    goal: Goal | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Definition:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        total = sum(v.weight for v in self.variants)
        if total != 100:
            raise ValueError(f"variant weights add up to {total}, not 100")
        if self.channel == "lead_form" and any(v.form is None for v in self.variants):
            raise ValueError("a lead form asks for something: give each variant a form (email or phone)")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at comes before starts_at")
        return self


class TriggerBody(Definition):
    """The API's body: the definition with the trigger's name and switch."""

    name: Annotated[str, Field(min_length=1, max_length=200), Storable]
    enabled: bool = False

    def definition(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"name", "enabled"})


def parse_definition(stored: dict[str, Any]) -> Definition:
    return Definition.model_validate(stored)
