"""Matching: which triggers an event, a segment change or a property change fires, and the
conditions that decide it — one set of functions for the live path, explain and the dry run.

Everything here is pure: facts about one contact in (a behaviour Snapshot and what the
widget/conversation state says), decisions out. The SQL lives in actions/trigger_sends.py
and reads/triggers.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..behaviour.segments import evaluate, reads
from ..behaviour.snapshot import Snapshot, matching_events, py_property
from .definition import CONTROL, Definition, EventWhen, ExitIntentWhen, PageTimeWhen, PropertyChangedWhen, SegmentWhen


@dataclass(frozen=True)
class Armed:
    """A trigger as the engine holds it: parsed once per change."""

    id: int
    name: str
    enabled: bool
    version: int
    definition: Definition


@dataclass
class Facts:
    """What the conditions look at for one contact besides its snapshot."""

    snapshot: Snapshot
    online: bool = False
    channels: set[str] = field(default_factory=set)
    live_conversation: bool = False


@dataclass(frozen=True)
class Check:
    """One condition, its value for the contact, and whether it holds."""

    name: str
    ok: bool
    value: str


@dataclass(frozen=True)
class Fired:
    trigger: Armed
    contact_id: int
    occurrence_seed: str  # the event id, or what changed: becomes the occurrence for every_time
    at: datetime
    event: dict[str, Any]


def triggering_event(when: Any) -> str | None:
    """The event name a when reacts to (None: not an event)."""
    if isinstance(when, EventWhen):
        return when.event
    if isinstance(when, PageTimeWhen):
        return "page_viewed"
    if isinstance(when, ExitIntentWhen):
        return "exit_intent"
    return None


def needed_events(d: Definition) -> set[str]:
    """The event names the definition's checks read (the snapshot loads only these)."""
    names = set(reads(d.audience.filter).events) if d.audience.filter else set()
    if (name := triggering_event(d.when)) is not None:
        names.add(name)
    return names


def _url_ok(url: str | None, needle: str | None) -> bool:
    return needle is None or (url is not None and needle.lower() in url.lower())


def event_window(d: Definition) -> dict[str, timedelta | None]:
    """The events `decide` reads, by name, and how far back from the event (None: all of
    them). The when's own count looks back over its window only (a single occurrence, a page
    or an exit intent reads none); the audience's conditions read all of theirs."""
    found: dict[str, timedelta | None] = {}
    w = d.when
    if isinstance(w, EventWhen) and w.count > 1:
        found[w.event] = timedelta(minutes=w.within_minutes) if w.within_minutes else None
    if d.audience.filter:
        found.update(dict.fromkeys(reads(d.audience.filter).events))
    return found


def event_matches(when: Any, name: str, url: str | None, properties: dict[str, Any], at: datetime) -> bool:
    """The event itself is one the when reacts to (its name, page and properties); whether it
    is the count-th is `event_fires`'s question."""
    if name != triggering_event(when):
        return False
    if isinstance(when, PageTimeWhen | ExitIntentWhen):
        return _url_ok(url, when.url_contains)
    assert isinstance(when, EventWhen)
    return _url_ok(url, when.url_contains) and all(py_property(p, properties, at) for p in when.where)


def event_fires(when: Any, name: str, url: str | None, properties: dict[str, Any], at: datetime,
                snapshot: Snapshot | None) -> bool:
    """Does this event (already stored, so counted in `snapshot`) fire the when?"""
    if not event_matches(when, name, url, properties, at):
        return False
    if not isinstance(when, EventWhen) or when.count == 1:
        return True
    times = matching_events(snapshot.events if snapshot else [], when.event, when.url_contains, when.where, at)
    since = at - timedelta(minutes=when.within_minutes) if when.within_minutes else None
    return sum(1 for t in times if t <= at and (since is None or t > since)) >= when.count


def change_fires(when: Any, segment_changes: list[tuple[int, bool]], properties: set[str]) -> str | None:
    """A segment entered/left or a property changed that fires the when: its occurrence seed."""
    if isinstance(when, SegmentWhen):
        entered = when.type == "segment_entered"
        if (when.segment_id, entered) in segment_changes:
            return f"{when.type}:{when.segment_id}"
    if isinstance(when, PropertyChangedWhen) and when.property in properties:
        return f"property:{when.property}"
    return None


def in_dates(d: Definition, now: datetime) -> Check:
    if d.starts_at and now < d.starts_at:
        return Check("dates", False, f"starts at {d.starts_at.isoformat()}")
    if d.ends_at and now >= d.ends_at:
        return Check("dates", False, f"ended at {d.ends_at.isoformat()}")
    return Check("dates", True, "within its dates")


def audience_checks(d: Definition, facts: Facts, now: datetime) -> list[Check]:
    """The audience conditions, one by one, with the contact's own values."""
    checks: list[Check] = []
    flt = d.audience.filter
    if flt is not None and flt.conditions:
        for n, cond in enumerate(flt.conditions):
            one = flt.model_copy(update={"conditions": [cond], "match": "all"})
            ok = evaluate(one, facts.snapshot, now)
            checks.append(Check(f"audience.filter[{n}] {_describe(cond)}", ok, _value_of(cond, facts.snapshot)))
        if flt.match == "any" and any(c.ok for c in checks):
            checks = [Check(c.name, True, c.value + " (any one suffices)") for c in checks]
    if d.audience.online_now:
        checks.append(Check("audience.online_now", facts.online, "online in the widget" if facts.online else "offline"))
    if d.audience.has_channel:
        has = d.audience.has_channel in facts.channels
        checks.append(Check(f"audience.has_channel {d.audience.has_channel}", has,
                            ", ".join(sorted(facts.channels)) or "no channel"))
    return checks


def send_checks(d: Definition, facts: Facts, now: datetime) -> list[Check]:
    """What must still hold when a scheduled send comes due (the delay's recheck)."""
    checks = [in_dates(d, now), *audience_checks(d, facts, now)]
    if isinstance(d.when, PageTimeWhen):
        last = (facts.snapshot.properties.get("last_page") or {}).get("url") if isinstance(
            facts.snapshot.properties.get("last_page"), dict) else None
        checks.append(Check(f"still on a page containing {d.when.url_contains!r}",
                            _url_ok(last, d.when.url_contains), last or "no page"))
        # Staying on one page sends no events: seen since the view (plus a margin) is still there.
        seen = facts.snapshot.last_seen_at >= now - delay_of(d) - timedelta(seconds=120)
        checks.append(Check("online in the widget", facts.online or seen,
                            f"last seen {facts.snapshot.last_seen_at.isoformat()}"))
    if d.limits.skip_if_live_conversation:
        checks.append(Check("no live conversation with an operator", not facts.live_conversation,
                            "an operator is talking with them" if facts.live_conversation else "none"))
    return checks


def _describe(cond: Any) -> str:
    data = cond.model_dump(mode="json", exclude_none=True)
    return " ".join(f"{k}={v}" for k, v in data.items() if k != "kind")[:200]


def _value_of(cond: Any, snap: Snapshot) -> str:
    field_name = getattr(cond, "field", None)
    if isinstance(field_name, str) and hasattr(snap, field_name):
        return repr(getattr(snap, field_name))
    key = getattr(cond, "key", None)
    if isinstance(key, str):
        return repr(snap.properties.get(key))
    name = getattr(cond, "name", None)
    if isinstance(name, str):
        return f"{sum(1 for e in snap.events if e[0] == name)} {name} event(s)"
    return "see the condition"


def _bucket(seed: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{seed}".encode()).digest()[:8], "big") % 10_000


def variant_for(trigger_id: int, contact_id: int, d: Definition) -> str:
    """Sticky per contact: the same contact always lands in the same group and variant."""
    if d.control_percent and _bucket(f"{trigger_id}:{contact_id}", "control") < d.control_percent * 100:
        return CONTROL
    point = _bucket(f"{trigger_id}:{contact_id}", "variant") % 100
    total = 0
    for v in d.variants:
        total += v.weight
        if point < total:
            return v.name
    return d.variants[-1].name


def occurrence(d: Definition, seed: str, at: datetime) -> str:
    """The unique key's third part: it lets the database itself refuse what the limit forbids."""
    if d.limits.frequency == "once":
        return "once"
    if d.limits.frequency == "once_per_period":
        return f"period:{int(at.timestamp()) // (d.limits.period_hours * 3600)}"
    return f"each:{seed}"[:200]


def delay_of(d: Definition) -> timedelta:
    extra = d.when.seconds if isinstance(d.when, PageTimeWhen) else 0
    return timedelta(seconds=d.delay_seconds + extra)


def when_check(d: Definition, facts: Facts, now: datetime) -> Check:
    """The "when" as it stands for the contact now (explain's first line)."""
    w = d.when
    snap = facts.snapshot
    if isinstance(w, EventWhen | PageTimeWhen | ExitIntentWhen):
        name = triggering_event(w)
        assert name is not None
        where = w.where if isinstance(w, EventWhen) else []
        times = matching_events(snap.events, name, w.url_contains, where, now)
        need = w.count if isinstance(w, EventWhen) else 1
        window = w.within_minutes if isinstance(w, EventWhen) else None
        recent = [t for t in times if window is None or t > now - timedelta(minutes=window)]
        span = f" in the last {window} min" if window else ""
        return Check(f"when: {need}× {name}" + (f" on {w.url_contains!r}" if w.url_contains else "") + span,
                     len(recent) >= need, f"{len(recent)} matching{span}, {len(times)} in all")
    if isinstance(w, SegmentWhen):
        inside = w.segment_id in snap.segments
        return Check(f"when: {w.type} #{w.segment_id}", inside == (w.type == "segment_entered"),
                     "in the segment" if inside else "not in the segment")
    if isinstance(w, PropertyChangedWhen):
        return Check(f"when: property {w.property!r} changes", True, f"now {snap.properties.get(w.property)!r}")
    return Check(f"when: {w.type}", True, "checked by the periodic sweep")


@dataclass(frozen=True)
class Candidate:
    trigger: Armed
    contact_id: int
    seed: str
    at: datetime
    name: str | None = None  # the event's, when an event fired it
    url: str | None = None
    properties: dict[str, Any] | None = None


def may_fire(c: Candidate) -> bool:
    """`decide`'s checks that need nothing about the contact: the live path drops a candidate
    failing them before reading the contact's facts (`decide` still makes them all)."""
    d = c.trigger.definition
    if c.name is not None and not event_matches(d.when, c.name, c.url, c.properties or {}, c.at):
        return False
    return in_dates(d, c.at).ok


def decide(c: Candidate, facts: Facts | None) -> Fired | None:
    """The one decision the live path and the dry run share: does this fire for this contact?"""
    if facts is None:
        return None
    d = c.trigger.definition
    if c.name is not None and not event_fires(d.when, c.name, c.url, c.properties or {}, c.at, facts.snapshot):
        return None
    if not in_dates(d, c.at).ok or not all(check.ok for check in audience_checks(d, facts, c.at)):
        return None
    event = {"name": c.name, "url": c.url, "properties": c.properties or {}} if c.name else {}
    return Fired(c.trigger, c.contact_id, c.seed, c.at, event)


def send_row(f: Fired) -> dict[str, Any]:
    d = f.trigger.definition
    variant = variant_for(f.trigger.id, f.contact_id, d)
    control = variant == CONTROL
    return {"trigger_id": f.trigger.id, "contact_id": f.contact_id, "occurrence": occurrence(d, f.occurrence_seed, f.at),
            "variant": variant, "state": "control" if control else "scheduled",
            "reason": "control group: measured, not sent" if control else None,
            "matched_at": f.at, "due_at": f.at if control else f.at + delay_of(d)}
