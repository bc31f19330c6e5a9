"""Contact filters: conditions on a contact's fields, properties and events, AND-combined.

The same model serves the contacts table of sales reps and saved segments. A filter is plain
data (pydantic, JSON in and out); `filter_sql.contact_filter_clause` turns it into one SQL
boolean over the `contact` table that runs on SQLite and PostgreSQL alike;
`snapshot.matches` evaluates it on a contact snapshot in Python (the rules engine's view of
one contact). Both follow one definition, and a test holds them to each other.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..models.types import storable

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _is_date(value: str) -> bool:
    if not _ISO_DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


# Text that reaches the database as a parameter: a filter holding NUL is invalid, not a failed query.
Storable = AfterValidator(storable)

TEXT_FIELDS = ("name", "email", "phone", "first_referrer", "first_landing_page")
NUMBER_FIELDS = ("score", "sessions")
TIME_FIELDS = ("first_seen_at", "last_seen_at")

TextOp = Literal["is_set", "not_set", "eq", "ne", "contains", "in_list"]
NumberOp = Literal["eq", "ne", "gt", "gte", "lt", "lte"]
TimeOp = Literal["within_days", "older_than_days"]
PropertyOp = Literal[
    "is_set", "not_set", "eq", "ne", "contains", "gt", "gte", "lt", "lte", "in_list",
    "before", "after", "within_days", "older_than_days",
]
DATE_OPS = ("before", "after", "within_days", "older_than_days")
Unit = Literal["minutes", "hours", "days"]
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}

# A property key is looked up inside a JSON path: keep it to characters that need no quoting.
PropertyKey = Annotated[str, Field(min_length=1, max_length=100, pattern=r'^[^"\\\x00-\x1f]+$'), Storable]
Days = Annotated[int, Field(ge=1, le=36_500)]
Scalar = str | float | bool
FiniteNumber = Annotated[float, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


ListText = Annotated[str, Field(max_length=500), Storable]


class Window(_Strict):
    """The last N minutes, hours or days (at most 100 years)."""

    amount: Annotated[int, Field(ge=1, le=52_560_000)]
    unit: Unit = "days"

    def delta(self) -> timedelta:
        return timedelta(seconds=min(self.amount * UNIT_SECONDS[self.unit], 36_500 * 86_400))


class TextFieldCondition(_Strict):
    """name / email / phone / first referrer / landing page: set, not set, equal, contains."""

    kind: Literal["field"] = "field"
    field: Literal["name", "email", "phone", "first_referrer", "first_landing_page"]
    op: TextOp
    value: Annotated[str, Field(max_length=500), Storable] | None = None
    values: Annotated[list[ListText], Field(min_length=1, max_length=100)] | None = None

    @model_validator(mode="after")
    def _value_needed(self) -> TextFieldCondition:
        if self.op in ("eq", "ne", "contains") and not self.value:
            raise ValueError(f"'{self.op}' needs a value")
        if self.op == "in_list" and not self.values:
            raise ValueError("'in_list' needs values")
        return self


class NumberFieldCondition(_Strict):
    """lead score / sessions compared with a number."""

    kind: Literal["number"] = "number"
    field: Literal["score", "sessions"]
    op: NumberOp
    value: FiniteNumber


class TimeFieldCondition(_Strict):
    """first seen / last seen within (or more than) N days ago."""

    kind: Literal["time"] = "time"
    field: Literal["first_seen_at", "last_seen_at"]
    op: TimeOp
    days: Days


class PropertyCondition(_Strict):
    """A property set by the site (`identify`) or an operator: set, equal, contains, compared.
    `eq`/`ne` with a string compare the text (a number 5 equals "5"); with a number or a
    boolean they compare values of that type; gt/gte/lt/lte need a number and only match
    numeric properties."""

    kind: Literal["property"] = "property"
    key: PropertyKey
    op: PropertyOp
    value: Annotated[str, Field(max_length=500), Storable] | FiniteNumber | bool | None = None
    values: Annotated[list[ListText], Field(min_length=1, max_length=100)] | None = None
    days: Days | None = None

    @model_validator(mode="after")
    def _value_fits(self) -> PropertyCondition:
        if self.op in ("is_set", "not_set"):
            return self
        if self.op == "in_list":
            if not self.values:
                raise ValueError("'in_list' needs values")
            return self
        if self.op in ("within_days", "older_than_days"):
            if self.days is None:
                raise ValueError(f"'{self.op}' needs days")
            return self
        if self.op in ("before", "after"):
            if not isinstance(self.value, str) or not _is_date(self.value):
                raise ValueError(f"'{self.op}' needs a date as YYYY-MM-DD")
            return self
        if self.value is None or self.value == "":
            raise ValueError(f"'{self.op}' needs a value")
        if self.op in ("gt", "gte", "lt", "lte") and (isinstance(self.value, bool) or not isinstance(self.value, float | int)):
            raise ValueError(f"'{self.op}' compares numbers")
        if self.op == "contains" and not isinstance(self.value, str):
            raise ValueError("'contains' looks for text")
        return self


class EventCondition(_Strict):
    """Event E happened at least / at most / exactly `count` times, or never, counting only
    events in the window (`within_days`, or `within` N minutes / hours / days), on pages whose
    URL contains `url_contains`, and whose own properties meet every `where` condition."""

    kind: Literal["event"] = "event"
    name: Annotated[str, Field(min_length=1, max_length=200), Storable]
    op: Literal["at_least", "at_most", "exactly", "never"] = "at_least"
    count: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    within_days: Days | None = None
    within: Window | None = None
    url_contains: Annotated[str, Field(min_length=1, max_length=500), Storable] | None = None
    where: Annotated[list[PropertyCondition], Field(max_length=10)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _count_fits(self) -> EventCondition:
        if self.op == "at_least" and self.count < 1:
            raise ValueError("'at_least' counts from 1 (use 'never' for none)")
        if self.within_days is not None and self.within is not None:
            raise ValueError("give within_days or within, not both")
        return self

    def window(self) -> timedelta | None:
        if self.within is not None:
            return self.within.delta()
        return timedelta(days=self.within_days) if self.within_days is not None else None


Condition = Annotated[
    TextFieldCondition | NumberFieldCondition | TimeFieldCondition | PropertyCondition | EventCondition,
    Field(discriminator="kind"),
]


class ContactFilter(_Strict):
    """Every condition must hold (AND). No conditions: every contact."""

    all: Annotated[list[Condition], Field(max_length=30)] = Field(default_factory=list)
