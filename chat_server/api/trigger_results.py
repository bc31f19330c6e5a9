"""REST for a trigger's results: per variant and control, the comparison with its intervals, and
the series per day (operators and sales read them; see docs/triggers-results.md)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, Field

from ..actions.errors import NotFound
from ..reads.trigger_results import Arm, trigger_results
from ..triggers import stats
from . import schemas as sc
from .framework import Call, Operation, endpoint

MAX_DAYS = 366


class ResultsQuery(sc.Body):
    days: Annotated[int, Field(ge=1, le=MAX_DAYS)] = 30


class ArmView(BaseModel):
    variant: str
    matched: int
    sent: int
    delivered: int
    read: int
    clicked: int
    replied: int
    unsubscribed: int
    goal: int
    revenue: float
    # goal / sent (for the control: goal / held out); null while the denominator is 0.
    conversion: float | None


class IntervalView(BaseModel):
    """As fractions: a difference of 0.032 is 3.2 percentage points, a lift of 0.25 is +25 %.
    null where undefined (an empty group) or unbounded (the lift with no goals in the control)."""

    estimate: float | None
    low: float | None
    high: float | None


class ComparisonView(BaseModel):
    variant: str
    difference: IntervalView
    lift: IntervalView
    enough_data: bool


class DayView(BaseModel):
    day: date
    variant: str
    matched: int
    sent: int
    goal: int


class ResultsView(BaseModel):
    trigger_id: int
    name: str
    days: int
    since: date
    min_per_group: int
    min_goals_per_group: int
    variants: list[ArmView]
    control: ArmView
    comparison: list[ComparisonView]
    series: list[DayView]


def _arm(a: Arm) -> ArmView:
    return ArmView(variant=a.variant, matched=a.matched, sent=a.sent, delivered=a.delivered, read=a.read,
                   clicked=a.clicked, replied=a.replied, unsubscribed=a.unsubscribed, goal=a.goal,
                   revenue=round(a.revenue, 2), conversion=a.conversion)


def _interval(i: stats.Interval) -> IntervalView:
    return IntervalView(estimate=i.estimate, low=i.low, high=i.high)


async def get_results(c: Call[None, ResultsQuery]) -> ResultsView:
    days = c.query.days
    r = await trigger_results(c.rt.db, c.path_int("id"), days)
    if r is None:
        raise NotFound("trigger_not_found", "no such trigger")
    assert r.trigger.id is not None
    return ResultsView(
        trigger_id=r.trigger.id, name=r.trigger.name, days=days, since=r.since.date(),
        min_per_group=stats.MIN_PER_ARM, min_goals_per_group=stats.MIN_CONVERSIONS_PER_ARM,
        variants=[_arm(a) for a in r.variants], control=_arm(r.control),
        comparison=[ComparisonView(variant=v, difference=_interval(cmp.difference), lift=_interval(cmp.lift),
                                   enough_data=cmp.enough_data) for v, cmp in r.comparison],
        series=[DayView(day=d.day, variant=d.variant, matched=d.matched, sent=d.sent, goal=d.goal) for d in r.series],
    )


routes: list[Operation] = [
    endpoint("GET", "/triggers/{id:int}/results", get_results,
             summary="A trigger's results: per variant and control, the difference and lift with 95 % intervals, per day",
             query=ResultsQuery, response=ResultsView),
]
