"""The dry run: replay the stored events of the last N days through the live path's decision
(engine.decide and engine.send_row, the functions `react` calls), counting the sends the
unique key would have let through. "Would have fired N times for M contacts", with a sample."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..reads import triggers as reads
from .definition import CONTROL, Definition, SegmentWhen
from .engine import Armed, Candidate, Facts, decide, needed_events, send_row, triggering_event

MAX_EVENTS = 200_000
SAMPLE = 20


def _as_of(facts: Facts, at: datetime) -> Facts:
    """The contact as it was when the event happened, as far as its events tell."""
    snap = facts.snapshot.model_copy(update={"events": [e for e in facts.snapshot.events if e[2] <= at]})
    return Facts(snapshot=snap, online=facts.online, channels=facts.channels, live_conversation=False)


async def dry_run(s: reads.Session, d: Definition, days: int, now: datetime, trigger_id: int = 0) -> dict[str, Any]:
    armed = Armed(trigger_id, "dry run", True, 1, d)
    name = triggering_event(d.when)
    if name is None and isinstance(d.when, SegmentWhen):
        name = d.when.type  # the timeline keeps segment_entered / segment_left
    if name is None:
        return {"supported": False, "reason": f"'{d.when.type}' is not replayed from stored events",
                "fired": 0, "contacts": 0, "control": 0, "sample": [], "days": days}
    events = await reads.stored_events(s, {name}, now - timedelta(days=days), MAX_EVENTS)
    if isinstance(d.when, SegmentWhen):
        events = [e for e in events if (e[4] or {}).get("segment_id") == d.when.segment_id]
    facts = await reads.load_facts(s, sorted({e[1] for e in events}), needed_events(d), now)
    # The online and live-conversation checks are about the moment of sending: in the past
    # they are unknown, so the replay assumes a visitor on the page and no operator talking.
    for f in facts.values():
        f.online = True
        f.channels.add("widget")
    keys: set[tuple[int, str]] = set()
    sample: list[dict[str, Any]] = []
    control = 0
    for event_id, contact_id, ev_name, url, props, at in events:
        base = facts.get(contact_id)
        if base is None:
            continue
        live_name = ev_name if triggering_event(d.when) is not None else None
        seed = str(event_id) if live_name else f"{d.when.type}:{(props or {}).get('segment_id')}:{int(at.timestamp())}"
        candidate = Candidate(armed, contact_id, seed, at, live_name, url, props or {})
        fired = decide(candidate, _as_of(base, at))
        if fired is None:
            continue
        row = send_row(fired)
        key = (contact_id, row["occurrence"])
        if key in keys:
            continue  # the unique key would refuse it
        keys.add(key)
        control += row["variant"] == CONTROL
        if len(sample) < SAMPLE:
            sample.append({"contact_id": contact_id, "at": at.isoformat(), "event_id": event_id, "variant": row["variant"]})
    return {"supported": True, "reason": None, "fired": len(keys), "contacts": len({k[0] for k in keys}),
            "control": control, "sample": sample, "days": days, "events_read": len(events)}
