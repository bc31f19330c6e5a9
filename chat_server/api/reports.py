"""Reports: volume by channel and day, first response and resolution times."""

from __future__ import annotations

from datetime import timedelta

from ..actions.errors import ActionError
from ..models.types import utcnow
from ..reads.reports import Stats, report
from . import inbox_schemas as isc
from .framework import Call, Operation, endpoint

MAX_REPORT_DAYS = 366


def _stats(st: Stats) -> isc.StatsView:
    return isc.StatsView(count=st.count, median_seconds=st.median, p90_seconds=st.p90)


async def get_report(c: Call[None, isc.ReportQuery]) -> isc.ReportView:
    q = c.query
    end = q.end or utcnow().date()
    start = q.start or end - timedelta(days=13)
    if start > end:
        raise ActionError("invalid_range", "start is after end")
    if (end - start).days >= MAX_REPORT_DAYS:
        raise ActionError("range_too_long", f"a report covers at most {MAX_REPORT_DAYS} days")
    result, names = await report(c.rt.db, start, end)
    return isc.ReportView(
        start=result.start, end=result.end, cycles=result.cycles, unanswered=result.unanswered,
        volume=[isc.VolumeDay(day=day, channels=channels) for day, channels in result.volume.items()],
        first_response=_stats(result.first_response), resolution=_stats(result.resolution),
        operators=[isc.OperatorTimesView(operator_id=op, name=names.get(op, f"#{op}"), first_response=_stats(frt),
                                         resolution=_stats(res))
                   for op, (frt, res) in result.per_operator.items()],
    )


routes: list[Operation] = [
    endpoint("GET", "/reports", get_report,
             summary="Volume by channel and day; first response and resolution times", query=isc.ReportQuery,
             response=isc.ReportView),
]
