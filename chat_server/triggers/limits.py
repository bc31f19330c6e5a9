"""Limits at send time: working hours in a time zone (with the next opening), the frequency
and the site's daily cap. Pure: the counts come in from the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .definition import DAYS, Definition, Hours
from .engine import Check


def zone_of(hours: Hours, site_zone: str, contact_zone: str | None) -> ZoneInfo:
    name = site_zone if hours.timezone == "site" else (contact_zone or site_zone) if hours.timezone == "contact" \
        else hours.timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_opening(hours: Hours, zone: ZoneInfo, now: datetime) -> datetime | None:
    """None when open now; otherwise when the hours next open (within two weeks)."""
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    for start, end in hours.minutes(DAYS[local.weekday()]):
        if start <= minute < end:
            return None
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for days_ahead in range(15):
        day = midnight + timedelta(days=days_ahead)
        for start, _ in hours.minutes(DAYS[day.weekday()]):
            # Built from the wall clock, so a DST change lands on the local hour asked for.
            opening = datetime(day.year, day.month, day.day, start // 60, start % 60, tzinfo=zone)
            if opening.astimezone(UTC) > now:
                return opening.astimezone(UTC)
    return None


def hours_check(d: Definition, site_zone: str, contact_zone: str | None, now: datetime) -> tuple[Check, datetime | None]:
    if d.hours is None:
        return Check("hours", True, "any time"), None
    zone = zone_of(d.hours, site_zone, contact_zone)
    opening = next_opening(d.hours, zone, now)
    local = now.astimezone(zone).strftime("%a %H:%M")
    if opening is None:
        return Check("hours", True, f"open ({local} {zone.key})"), None
    return Check("hours", False, f"closed ({local} {zone.key}); opens {opening.isoformat()}"), opening


def cap_check(sent_today: int, cap: int) -> Check:
    return Check("site daily cap", sent_today < cap, f"{sent_today} of {cap} automatic messages in the last 24 hours")


def frequency_check(d: Definition, last_sent: datetime | None, now: datetime) -> Check:
    f = d.limits.frequency
    if f == "every_time" or last_sent is None:
        return Check(f"frequency {f}", True, "never sent" if last_sent is None else f"last sent {last_sent.isoformat()}")
    if f == "once":
        return Check("frequency once", False, f"already sent {last_sent.isoformat()}")
    ok = last_sent <= now - timedelta(hours=d.limits.period_hours)
    return Check(f"frequency once per {d.limits.period_hours} h", ok, f"last sent {last_sent.isoformat()}")
