"""Sending a due trigger send: claim it with a lease, check again, apply the limits, render,
send, and record the outcome.

A lease is taken with one conditional UPDATE (only rows whose lease is free or expired), so
two processes never hold the same row; a process that dies mid-send leaves the lease to
expire and the row is tried again. The message's client_msg_id is "trigger-send-<id>" and the
timeline event's event_id "trigger-sent-<id>", so a retry after a crash between sending and
recording stores neither twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from ..models import Contact, Event, Operator
from ..models.trigger import Trigger, TriggerSend
from ..models.types import utcnow
from ..reads import triggers as reads
from ..reads.reach import reach_of
from ..runtime import Runtime
from ..triggers.channel import choose_channel
from ..triggers.definition import parse_definition
from ..triggers.engine import needed_events, send_checks
from ..triggers.limits import cap_check, frequency_check, hours_check
from ..triggers.templates import TemplateError, contact_context, render
from .errors import ActionError
from .membership import run
from .proactive import do_send_proactive
from .tracking import TrackItem, do_track
from .webhook_events import emit_trigger_fired

log = logging.getLogger(__name__)
SEND = TriggerSend.__table__.c  # type: ignore[attr-defined]
LEASE = timedelta(seconds=60)
# How each widget channel of a definition shows: a chat message or a popup card.
WIDGET = {"widget_chat": "chat", "widget_popup": "card", "lead_form": "card", "best_available": "chat"}


@dataclass(frozen=True)
class Outcome:
    state: str  # sent | cancelled | failed | deferred | lost (the lease passed to another)
    reason: str | None = None


async def claim(rt: Runtime, owner: str, now: datetime, limit: int = 50) -> list[int]:
    """Take the due sends whose lease is free; the ids this owner now holds."""
    free = or_(SEND.lease_until.is_(None), SEND.lease_until < now)
    async with rt.db.read() as s:
        ids = [r[0] for r in (await run(s, select(SEND.id).where(
            SEND.state == "scheduled", SEND.due_at <= now, free).order_by(SEND.due_at).limit(limit))).all()]
    if not ids:
        return []
    until = now + LEASE
    async with rt.db.write() as s:
        # The WHERE is checked again on the row itself: of two processes, one gets each row.
        await run(s, update(TriggerSend.__table__).where(  # type: ignore[attr-defined]
            SEND.id.in_(ids), SEND.state == "scheduled", free).values(lease_owner=owner, lease_until=until))
    async with rt.db.read() as s:
        return [r[0] for r in (await run(s, select(SEND.id).where(
            SEND.id.in_(ids), SEND.lease_owner == owner, SEND.lease_until > now, SEND.state == "scheduled"))).all()]


async def contacts_of(rt: Runtime, send_ids: list[int]) -> dict[int, int]:
    """Each send's contact."""
    async with rt.db.read() as s:
        return {r[0]: r[1] for r in (await run(s, select(SEND.id, SEND.contact_id).where(SEND.id.in_(send_ids)))).all()}


async def _finish(rt: Runtime, send_id: int, owner: str,
                  fired: tuple[Trigger, int, dict[str, object]] | None = None, **values: object) -> bool:
    """Record the outcome while this owner still holds the lease; a send that went out is
    also told to the webhooks (`trigger.fired`) in the same transaction."""
    async with rt.db.write() as s:
        result = await run(s, update(TriggerSend.__table__).where(  # type: ignore[attr-defined]
            SEND.id == send_id, SEND.lease_owner == owner, SEND.state == "scheduled").values(
            lease_owner=None, lease_until=None, **values))
        if result.rowcount and fired is not None:
            trigger, contact_id, details = fired
            emit_trigger_fired(s, trigger.id or 0, trigger.name, contact_id, details)
        return bool(result.rowcount)


async def deliver(rt: Runtime, send_id: int, owner: str, now: datetime | None = None) -> Outcome:
    now = now or utcnow()
    async with rt.db.read() as s:
        send = await s.get(TriggerSend, send_id)
        trigger = await s.get(Trigger, send.trigger_id) if send is not None else None
        contact = await s.get(Contact, send.contact_id) if send is not None else None
        if send is None or trigger is None or send.state != "scheduled" or send.lease_owner != owner:
            return Outcome("lost")
        cap, site_zone = await reads.site_limits(s)
        d = parse_definition(trigger.definition)
        facts = (await reads.load_facts(s, [send.contact_id], needed_events(d), now)).get(send.contact_id)
        sent_today = await reads.sent_since(s, send.contact_id, now - timedelta(days=1), send_id)
        last = await reads.last_sent(s, trigger.id or 0, send.contact_id, send_id)
        zone = await reads.contact_zone(s, send.contact_id)
        operator = await s.get(Operator, d.sender.operator_id) if d.sender.operator_id else None
        reach = await reach_of(s, send.contact_id, online_widget=facts is not None and facts.online)
    if trigger.deleted_at is not None or not trigger.enabled:
        return await _cancel(rt, send_id, owner, "the trigger was paused or deleted before the send")
    if facts is None or contact is None:
        return await _cancel(rt, send_id, owner, "the contact no longer exists (merged or deleted)")
    for check in [*send_checks(d, facts, now), frequency_check(d, last, now), cap_check(sent_today, cap)]:
        if not check.ok:
            return await _cancel(rt, send_id, owner, f"{check.name}: {check.value}")
    hours, opening = hours_check(d, site_zone, zone, now)
    if not hours.ok:
        if opening is None:
            return await _cancel(rt, send_id, owner, "outside working hours, and they never open")
        reason = f"outside working hours: waits for {opening.isoformat()}"
        await _finish(rt, send_id, owner, due_at=opening, reason=reason, sent_at=None)
        return Outcome("deferred", reason)
    channel, why = choose_channel(d.channel, reach)
    if channel is None:
        return await _cancel(rt, send_id, owner, f"no channel: {why}")
    variant = next((v for v in d.variants if v.name == send.variant), d.variants[0])
    try:
        context = contact_context(contact, await _event_of(rt, send))
        text = render(variant.text, context)
        subject = render(variant.subject, context) if variant.subject else trigger.name
    except TemplateError as exc:
        return await _fail(rt, send_id, owner, f"template: {exc}")
    if not await _reserve(rt, send_id, owner, send.contact_id, cap, now):
        return await _cancel(rt, send_id, owner, f"site daily cap: {cap} automatic messages in the last 24 hours")
    try:
        stored = await do_send_proactive(
            rt, send.contact_id, text, channel=channel,  # type: ignore[arg-type]
            display=WIDGET.get(d.channel, "chat"),  # type: ignore[arg-type]
            author_name=operator.name if operator is not None else d.sender.bot_name,
            author_operator_id=operator.id if operator is not None else None,
            subject=subject if channel == "email" else None,
            form=variant.form.model_dump() if d.channel == "lead_form" and variant.form else None,
            client_msg_id=f"trigger-send-{send_id}")
    except (ActionError, ValueError) as exc:
        return await _fail(rt, send_id, owner, f"unreachable: {exc}")
    details = {"send_id": send_id, "variant": send.variant, "message_id": stored.message.id, "channel": channel}
    if not await _finish(rt, send_id, owner, state="sent", sent_at=now, channel=channel, message_id=stored.message.id,
                         reason=None, fired=(trigger, send.contact_id, details)):
        return Outcome("lost")
    await do_track(rt, [TrackItem(send.contact_id, "triggered_message_sent", {
        "trigger_id": trigger.id, "trigger": trigger.name, **details}, external_id=f"trigger-sent-{send_id}")])
    return Outcome("sent")


async def _event_of(rt: Runtime, send: TriggerSend) -> dict[str, object]:
    """The event that fired an every-time send, for the template's `event`."""
    if not send.occurrence.startswith("each:") or not send.occurrence[5:].isdigit():
        return {}
    async with rt.db.read() as s:
        event = await s.get(Event, int(send.occurrence[5:]))
    if event is None or event.contact_id != send.contact_id:
        return {}
    return {"name": event.name, "url": event.url, "properties": event.properties}


async def _reserve(rt: Runtime, send_id: int, owner: str, contact_id: int, cap: int, now: datetime) -> bool:
    """Count this send against the daily cap before it leaves (its sent_at, set now), with the
    contact locked: of two sends racing for the last place, one gets it."""
    async with rt.db.write() as s:
        await reads.lock_contact(s, contact_id)
        if await reads.sent_since(s, contact_id, now - timedelta(days=1), send_id) >= cap:
            return False
        result = await run(s, update(TriggerSend.__table__).where(  # type: ignore[attr-defined]
            SEND.id == send_id, SEND.lease_owner == owner, SEND.state == "scheduled").values(sent_at=now))
        return bool(result.rowcount)


async def _cancel(rt: Runtime, send_id: int, owner: str, reason: str) -> Outcome:
    await _finish(rt, send_id, owner, state="cancelled", reason=reason[:1000], sent_at=None)
    return Outcome("cancelled", reason)


async def _fail(rt: Runtime, send_id: int, owner: str, reason: str) -> Outcome:
    log.info("trigger send failed", extra={"send_id": send_id, "reason": reason[:300]})
    await _finish(rt, send_id, owner, state="failed", reason=reason[:1000], sent_at=None)
    return Outcome("failed", reason)

