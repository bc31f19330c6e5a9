"""Lead scoring rules and the A1…E4 grade, as data, with their pure evaluation.

A rule gives (or takes) points when an event happens — optionally only for events on pages
whose URL contains a text or whose own properties meet conditions — or while a condition on
the contact's card holds. Each rule may count once per contact, at most N times, or every
time; an event rule's points may expire after N days (decay). `actions/scoring.py` stores
each award as a score entry, so the score has a per-rule breakdown and a history.

The grade is profile fit (A–E, the first fit rule whose conditions all hold, else the
default) × engagement (1–4 from the score: 1 at or above the first threshold, the most
engaged, down to 4 below the last).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .filters import NumberFieldCondition, PropertyCondition, Storable, TextFieldCondition, _Strict
from .snapshot import Snapshot, matching_events, py_condition

Points = Annotated[int, Field(ge=-10_000, le=10_000)]
CardCondition = Annotated[TextFieldCondition | NumberFieldCondition | PropertyCondition, Field(discriminator="kind")]


class EventTrigger(_Strict):
    """Event E happened (on such pages, with such properties)."""

    kind: Literal["event"] = "event"
    name: Annotated[str, Field(min_length=1, max_length=200), Storable]
    url_contains: Annotated[str, Field(min_length=1, max_length=500), Storable] | None = None
    where: Annotated[list[PropertyCondition], Field(max_length=10)] = Field(default_factory=list)


class CardTrigger(_Strict):
    """Every condition on the card holds (fields and properties; not the score itself)."""

    kind: Literal["card"] = "card"
    conditions: Annotated[list[CardCondition], Field(min_length=1, max_length=10)]

    @model_validator(mode="after")
    def _not_the_score(self) -> CardTrigger:
        if any(isinstance(c, NumberFieldCondition) and c.field == "score" for c in self.conditions):
            raise ValueError("a scoring rule cannot read the score it changes")
        return self


class RuleDefinition(_Strict):
    when: Annotated[EventTrigger | CardTrigger, Field(discriminator="kind")]
    points: Points
    # "always": every matching event; "once": the first only; "max": at most max_times.
    limit: Literal["always", "once", "max"] = "always"
    max_times: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    # Decay: an event's points stop counting this many days after the event.
    expires_days: Annotated[int, Field(ge=1, le=3650)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RuleDefinition:
        if self.points == 0:
            raise ValueError("a rule gives or takes at least one point")
        if (self.limit == "max") != (self.max_times is not None):
            raise ValueError("max_times goes with limit 'max', and only with it")
        if isinstance(self.when, CardTrigger) and (self.expires_days is not None or self.limit == "max"):
            raise ValueError("a card rule counts while its condition holds: no decay, no 'max'")
        return self

    def allowed(self, given_before: int) -> bool:
        """May this rule give its points again, having given them `given_before` times?"""
        if self.limit == "once":
            return given_before < 1
        if self.limit == "max":
            assert self.max_times is not None
            return given_before < self.max_times
        return True


def event_matches(trigger: EventTrigger, name: str, url: str | None, properties: dict[str, Any], now: datetime) -> bool:
    return bool(matching_events([(name, url, now, properties)], trigger.name, trigger.url_contains, trigger.where, now))


def card_holds(trigger: CardTrigger, snap: Snapshot, now: datetime) -> bool:
    return all(py_condition(c, snap, now) for c in trigger.conditions)


# The source's table, shipped as editable rules.
PRESET: list[tuple[str, dict[str, Any]]] = [
    ("Visited the site", {"when": {"kind": "event", "name": "session_started"}, "points": 1}),
    ("Read an email", {"when": {"kind": "event", "name": "email_opened"}, "points": 5}),
    ("Downloaded a guide", {"when": {"kind": "event", "name": "guide_downloaded"}, "points": 10}),
    ("Finished the trial", {"when": {"kind": "event", "name": "trial_finished"}, "points": 20, "limit": "once"}),
    ("Viewed paid features", {"when": {"kind": "event", "name": "paid_features_viewed"}, "points": 30}),
    ("Viewed the payment form", {"when": {"kind": "event", "name": "payment_form_viewed"}, "points": 40}),
    ("Unsubscribed", {"when": {"kind": "event", "name": "unsubscribed"}, "points": -10, "limit": "once"}),
]


class FitRule(_Strict):
    grade: Literal["A", "B", "C", "D", "E"]
    conditions: Annotated[list[CardCondition], Field(min_length=1, max_length=10)]


class GradingConfig(_Strict):
    fit: Annotated[list[FitRule], Field(max_length=20)] = Field(default_factory=list)
    default_fit: Literal["A", "B", "C", "D", "E"] = "E"
    # Score thresholds for engagement 1, 2 and 3 (descending); below the last: 4.
    thresholds: Annotated[list[Annotated[int, Field(ge=-1_000_000, le=1_000_000)]], Field(min_length=3, max_length=3)] = \
        Field(default_factory=lambda: [100, 50, 20])

    @model_validator(mode="after")
    def _descending(self) -> GradingConfig:
        if not self.thresholds[0] > self.thresholds[1] > self.thresholds[2]:
            raise ValueError("thresholds go from the most engaged down: t1 > t2 > t3")
        for rule in self.fit:
            if any(isinstance(c, NumberFieldCondition) and c.field == "score" for c in rule.conditions):
                raise ValueError("profile fit reads the card, not the score")
        return self


def grade_of(config: GradingConfig, snap: Snapshot, score: int, now: datetime) -> str:
    fit = next((r.grade for r in config.fit if all(py_condition(c, snap, now) for c in r.conditions)), config.default_fit)
    engagement = next((str(n) for n, t in enumerate(config.thresholds, start=1) if score >= t), "4")
    return fit + engagement


def card_reads(definition: RuleDefinition | GradingConfig) -> tuple[set[str], set[str]]:
    """The property keys and card fields a card rule (or the fit rules) read."""
    conditions: list[Any] = []
    if isinstance(definition, RuleDefinition):
        if isinstance(definition.when, CardTrigger):
            conditions = list(definition.when.conditions)
    else:
        conditions = [c for r in definition.fit for c in r.conditions]
    keys = {c.key for c in conditions if isinstance(c, PropertyCondition)}
    fields = {c.field for c in conditions if not isinstance(c, PropertyCondition)}
    return keys, fields
