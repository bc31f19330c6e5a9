"""Reading triggers and their sends, and the facts about a contact that the trigger checks
look at (the live path, explain and the dry run all load them here)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..behaviour.snapshot import Snapshot
from ..models import Contact, ContactIdentity, Conversation, Event, Message, SegmentMembership, SiteSettings
from ..models.trigger import Trigger, TriggerSend
from ..triggers.engine import Facts

CONTACT = Contact.__table__.c  # type: ignore[attr-defined]
EVENT = Event.__table__.c  # type: ignore[attr-defined]
SEND = TriggerSend.__table__.c  # type: ignore[attr-defined]
TRIGGER = Trigger.__table__.c  # type: ignore[attr-defined]
# A contact seen this recently counts as online in the widget: an event, or a widget still
# open (each process stamps those every minute: actions/arrivals.WIDGETS_SEEN_SECONDS).
ONLINE_SECONDS = 120
# An operator's message this recent means a conversation is going on: no bot interrupts it.
LIVE_CONVERSATION_MINUTES = 30
SENT_STATES = ("sent",)
# What explain and the dry run (triggers/, where no SQL is written) are handed.
Session = AsyncSession


async def _run(s: AsyncSession, statement: Any) -> Any:
    return await (await s.connection()).execute(statement)


async def live_triggers(s: AsyncSession) -> list[Trigger]:
    return list((await s.exec(select(Trigger).where(TRIGGER.deleted_at.is_(None)).order_by(TRIGGER.id))).scalars())  # type: ignore[call-overload]


async def get_trigger(s: AsyncSession, trigger_id: int) -> Trigger | None:
    trigger = await s.get(Trigger, trigger_id)
    return None if trigger is None or trigger.deleted_at is not None else trigger


async def stamp(s: AsyncSession) -> tuple[Any, ...]:
    """Changes whenever a trigger is added, edited, switched or deleted."""
    return tuple((await _run(s, select(func.count(TRIGGER.id), func.max(TRIGGER.updated_at), func.max(TRIGGER.id)))).one())


async def counts(s: AsyncSession, trigger_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(matched, sent) per trigger."""
    if not trigger_ids:
        return {}
    sent = func.sum(case((SEND.state == "sent", 1), else_=0))
    rows = (await _run(s, select(SEND.trigger_id, func.count(SEND.id), sent).where(
        SEND.trigger_id.in_(trigger_ids)).group_by(SEND.trigger_id))).all()
    return {r[0]: (r[1], int(r[2] or 0)) for r in rows}


async def site_limits(s: AsyncSession) -> tuple[int, str]:
    site = (await s.exec(select(SiteSettings).limit(1))).first()  # type: ignore[call-overload]
    row = site[0] if site is not None else None
    return (row.auto_messages_per_day, row.timezone) if row is not None else (3, "UTC")


async def sent_since(s: AsyncSession, contact_id: int, since: datetime, besides: int = 0) -> int:
    """Automatic messages sent (or being sent) to the contact since then, across every trigger
    and channel; `besides` leaves out the send asking (its own reservation)."""
    return int((await _run(s, select(func.count(SEND.id)).where(
        SEND.contact_id == contact_id, SEND.sent_at.is_not(None), SEND.sent_at > since, SEND.id != besides))).scalar_one())


async def last_sent(s: AsyncSession, trigger_id: int, contact_id: int, besides: int = 0) -> datetime | None:
    value: datetime | None = (await _run(s, select(func.max(SEND.sent_at)).where(
        SEND.trigger_id == trigger_id, SEND.contact_id == contact_id, SEND.id != besides))).scalar_one()
    return value


async def lock_contact(s: AsyncSession, contact_id: int) -> None:
    """Serialise the sends to one contact (PostgreSQL; SQLite has one writer already), so two
    processes cannot both pass the daily cap."""
    if s.bind is not None and s.bind.dialect.name == "postgresql":
        await _run(s, select(CONTACT.id).where(CONTACT.id == contact_id).with_for_update())


async def sends_of(s: AsyncSession, trigger_id: int, contact_id: int, limit: int = 20) -> list[TriggerSend]:
    return list((await s.exec(select(TriggerSend).where(  # type: ignore[call-overload]
        SEND.trigger_id == trigger_id, SEND.contact_id == contact_id).order_by(SEND.id.desc()).limit(limit))).scalars())


async def load_facts(s: AsyncSession, contact_ids: list[int], event_names: set[str], now: datetime,
                     since: dict[str, datetime] | None = None) -> dict[int, Facts]:
    """Each live contact's card, the events of these names (with their properties; of a name
    in `since`, only those after that moment), its segments, and whether it is online,
    reachable where, and talking with an operator."""
    if not contact_ids:
        return {}
    rows = (await _run(s, select(
        CONTACT.id, CONTACT.name, CONTACT.email, CONTACT.phone, CONTACT.first_referrer, CONTACT.first_landing_page,
        CONTACT.score, CONTACT.sessions, CONTACT.grade, CONTACT.first_seen_at, CONTACT.last_seen_at, CONTACT.properties,
    ).where(CONTACT.id.in_(contact_ids), CONTACT.merged_into_id.is_(None)))).all()
    facts: dict[int, Facts] = {}
    for r in rows:
        snap = Snapshot(
            name=r[1], email=r[2], phone=r[3], first_referrer=r[4], first_landing_page=r[5], score=r[6] or 0,
            sessions=r[7] or 0, grade=r[8], first_seen_at=r[9], last_seen_at=r[10], properties=r[11] or {},
            events=[], segments=set())
        online = r[10] is not None and r[10] >= now - timedelta(seconds=ONLINE_SECONDS)
        facts[r[0]] = Facts(snapshot=snap, online=online, channels={"email"} if r[2] else set())
        if online:
            facts[r[0]].channels.add("widget")
    if not facts:
        return facts
    ids = list(facts)
    if event_names:
        bounded = {name: at for name, at in (since or {}).items() if name in event_names}
        which = [EVENT.name.in_(sorted(event_names - set(bounded)))] if event_names - set(bounded) else []
        which += [and_(EVENT.name == name, EVENT.occurred_at > at) for name, at in sorted(bounded.items())]
        for e in (await _run(s, select(EVENT.contact_id, EVENT.name, EVENT.url, EVENT.occurred_at, EVENT.properties).where(
                EVENT.contact_id.in_(ids), or_(*which)))).all():
            facts[e[0]].snapshot.events.append((e[1], e[2], e[3], e[4] or {}))
    member = SegmentMembership.__table__.c  # type: ignore[attr-defined]
    for contact_id, segment_id in (await _run(s, select(member.contact_id, member.segment_id).where(
            member.contact_id.in_(ids)))).all():
        facts[contact_id].snapshot.segments.add(segment_id)
    ident = ContactIdentity.__table__.c  # type: ignore[attr-defined]
    for contact_id, kind in (await _run(s, select(ident.contact_id, ident.kind).where(
            ident.contact_id.in_(ids), ident.kind.in_(["telegram", "vk"])))).all():
        facts[contact_id].channels.add(str(kind))
    conv, msg = Conversation.__table__.c, Message.__table__.c  # type: ignore[attr-defined]
    for (contact_id,) in (await _run(s, select(conv.contact_id).distinct().join(Message.__table__, and_(  # type: ignore[attr-defined]
            msg.conversation_id == conv.id, msg.author_type == "operator",
            msg.created_at > now - timedelta(minutes=LIVE_CONVERSATION_MINUTES))).where(
            conv.contact_id.in_(ids), conv.status == "open"))).all():
        facts[contact_id].live_conversation = True
    return facts


async def contact_zone(s: AsyncSession, contact_id: int) -> str | None:
    props = (await _run(s, select(CONTACT.properties).where(CONTACT.id == contact_id))).scalar_one_or_none() or {}
    zone = props.get("timezone")
    return zone if isinstance(zone, str) else None


async def stored_events(s: AsyncSession, names: set[str], since: datetime, limit: int) -> list[Any]:
    """The stored events of these names since then, oldest first (the dry run replays them)."""
    return list((await _run(s, select(EVENT.id, EVENT.contact_id, EVENT.name, EVENT.url, EVENT.properties,
                                      EVENT.occurred_at).where(EVENT.name.in_(sorted(names)), EVENT.occurred_at >= since)
                          .order_by(EVENT.occurred_at, EVENT.id).limit(limit))).all())
