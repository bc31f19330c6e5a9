"""Shared steps of the trigger tests: a definition, contacts, events, the sends and messages."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import select

from chat_server.actions.contacts import find_or_create_contact
from chat_server.actions.tracking import TrackItem, do_track
from chat_server.actions.triggers import do_create_trigger
from chat_server.models import IdentityKind, Kind, Message
from chat_server.models.trigger import Trigger, TriggerSend
from chat_server.models.types import utcnow
from chat_server.runtime import Runtime
from chat_server.triggers.definition import TriggerBody
from tests.inprocess import RecordingBus

PRICING = "https://shop.example/pricing"


def pricing_trigger(**changes: Any) -> dict[str, Any]:
    """The issue's example: 3 views of /pricing within 10 minutes, email unknown → after 30 s a chat message."""
    body: dict[str, Any] = {
        "name": "Pricing greeting", "enabled": True,
        "when": {"type": "event", "event": "page_viewed", "url_contains": "/pricing", "count": 3, "within_minutes": 10},
        "audience": {"filter": {"kind": "group", "match": "all", "conditions": [
            {"kind": "field", "field": "email", "op": "not_set"}]}},
        "delay_seconds": 30, "channel": "widget_chat", "sender": {"bot_name": "Anna"},
        "variants": [{"name": "A", "weight": 100, "text": "Hi {{ contact.name | default: 'there' }}, need help with prices?"}],
        "control_percent": 0, "limits": {"frequency": "once"},
    }
    body.update(changes)
    return body


async def make_trigger(rt: Runtime, **changes: Any) -> Trigger:
    return await do_create_trigger(rt, None, TriggerBody.model_validate(pricing_trigger(**changes)))


async def contact(rt: Runtime, key: str, email: str | None = None, name: str | None = None) -> int:
    async with rt.db.write() as s:
        c, _ = await find_or_create_contact(s, IdentityKind.visitor, key, "first visit")
        if email is not None or name is not None:
            c.email, c.name = email, name
            s.add(c)
    assert c.id is not None
    return c.id


async def views(rt: Runtime, contact_id: int, n: int, url: str = PRICING, start: datetime | None = None,
                gap: timedelta = timedelta(minutes=1)) -> list[int | None]:
    start = start or utcnow() - gap * n
    items = [TrackItem(contact_id, "page_viewed", {"title": "Pricing"}, url=url, occurred_at=start + gap * i) for i in range(n)]
    return await do_track(rt, items)


async def sends(rt: Runtime, trigger_id: int | None = None) -> list[TriggerSend]:
    async with rt.db.read() as s:
        query = select(TriggerSend).order_by(TriggerSend.id)  # type: ignore[arg-type]
        if trigger_id is not None:
            query = query.where(TriggerSend.trigger_id == trigger_id)
        return list((await s.exec(query)).all())


async def automatic_messages(rt: Runtime) -> list[Message]:
    async with rt.db.read() as s:
        return list((await s.exec(select(Message).where(Message.kind == Kind.automatic))).all())


def frames_to(bus: RecordingBus, contact_id: int) -> list[dict[str, Any]]:
    return [json.loads(d.frame) for d in bus.published if d.audience.contact_ids == (contact_id,)]
