"""Explain: for one contact and one trigger, every condition with the contact's own value,
the limits, the hours, the channel, and the last time it fired. It calls the very checks the
live path and the worker call (engine.py, limits.py), so it cannot tell a different story."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..models.trigger import Trigger
from ..reads import triggers as reads
from ..reads.reach import reach_of
from .channel import choose_channel
from .definition import parse_definition
from .engine import Check, in_dates, needed_events, send_checks, variant_for, when_check
from .limits import cap_check, frequency_check, hours_check


def _line(c: Check) -> dict[str, Any]:
    return {"condition": c.name, "ok": c.ok, "value": c.value}


async def explain(s: reads.Session, trigger: Trigger, contact_id: int, now: datetime) -> dict[str, Any] | None:
    d = parse_definition(trigger.definition)
    facts = (await reads.load_facts(s, [contact_id], needed_events(d), now)).get(contact_id)
    if facts is None:
        return None
    assert trigger.id is not None
    cap, site_zone = await reads.site_limits(s)
    conditions = [Check("enabled", trigger.enabled, "on" if trigger.enabled else "paused"),
                  when_check(d, facts, now), in_dates(d, now)]
    conditions += [c for c in send_checks(d, facts, now) if c.name != "dates"]
    limits = [frequency_check(d, await reads.last_sent(s, trigger.id, contact_id), now),
              cap_check(await reads.sent_since(s, contact_id, now - timedelta(days=1)), cap)]
    hours, opening = hours_check(d, site_zone, await reads.contact_zone(s, contact_id), now)
    channel, why = choose_channel(d.channel, await reach_of(s, contact_id, online_widget=facts.online))
    group = variant_for(trigger.id, contact_id, d)
    sends = await reads.sends_of(s, trigger.id, contact_id)
    failing = [c.name for c in [*conditions, *limits, hours] if not c.ok]
    if channel is None:
        failing.append("channel")
    last = next((x for x in sends if x.sent_at is not None or x.state == "control"), None)
    return {
        "trigger_id": trigger.id, "contact_id": contact_id, "at": now.isoformat(),
        "would_send_now": not failing and group != "control",
        "failing": failing,
        "conditions": [_line(c) for c in conditions],
        "limits": [_line(c) for c in limits],
        "hours": {**_line(hours), "next_opening": opening.isoformat() if opening else None},
        "channel": {"chosen": channel, "why": why},
        "group": group,
        "last_fired": None if last is None else {
            "send_id": last.id, "state": last.state, "matched_at": last.matched_at.isoformat(),
            "sent_at": last.sent_at.isoformat() if last.sent_at else None},
        "sends": [{"id": x.id, "state": x.state, "variant": x.variant, "reason": x.reason,
                   "matched_at": x.matched_at.isoformat(), "due_at": x.due_at.isoformat(),
                   "sent_at": x.sent_at.isoformat() if x.sent_at else None} for x in sends],
    }
