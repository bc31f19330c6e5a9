"""Triggers: admins create, change, pause, duplicate and delete them; the demo trigger."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update

from ..behaviour.segments import SegmentCondition
from ..models import Operator, Role, Segment
from ..models.trigger import Trigger, TriggerSend
from ..models.types import utcnow
from ..runtime import Runtime
from ..triggers.definition import Definition, SegmentWhen, TriggerBody
from .errors import ActionError, Forbidden, NotFound
from .membership import run
from .validation import check_storable

MAX_TRIGGERS = 500
TRIGGER = Trigger.__table__.c  # type: ignore[attr-defined]
SEND = TriggerSend.__table__.c  # type: ignore[attr-defined]

DEMO = {
    "name": "Demo: greet a visitor comparing prices", "enabled": True,
    "when": {"type": "event", "event": "page_viewed", "url_contains": "/pricing", "count": 3, "within_minutes": 10},
    "audience": {"filter": {"kind": "group", "match": "all", "conditions": [
        {"kind": "field", "field": "email", "op": "not_set"}]}},
    "channel": "widget_chat", "sender": {"bot_name": "Bot"},
    "variants": [{"name": "A", "weight": 100,
                  "text": "Hi {{ contact.first_name | default: 'there' }}! Comparing plans? Ask me anything about prices."}],
    "limits": {"frequency": "once"},
}


class InvalidDefinition(ActionError):
    status = 422


def check_can_manage(actor: Operator) -> None:
    if actor.role != Role.admin:
        raise Forbidden("admin_only", "only admins manage triggers")


def check_definition(data: dict[str, Any]) -> Definition:
    """A definition assembled from a partial change is checked whole, like a new one."""
    try:
        return Definition.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidDefinition("invalid_definition", f"{where}: {first['msg']}" if where else first["msg"]) from exc


async def _check_references(rt: Runtime, d: Definition) -> None:
    segments = {d.when.segment_id} if isinstance(d.when, SegmentWhen) else set()
    if d.audience.filter is not None:
        segments |= {c.segment_id for c in d.audience.filter.leaves() if isinstance(c, SegmentCondition)}
    async with rt.db.read() as s:
        for seg_id in sorted(segments):
            if await s.get(Segment, seg_id) is None:
                raise ActionError("segment_not_found", f"no segment #{seg_id}")
        if d.sender.operator_id is not None:
            op = await s.get(Operator, d.sender.operator_id)
            if op is None or not op.is_active:
                raise ActionError("operator_not_found", f"no active operator #{d.sender.operator_id} to send as")


async def do_create_trigger(rt: Runtime, actor: Operator | None, body: TriggerBody) -> Trigger:
    if actor is not None:
        check_can_manage(actor)
    definition = check_definition(body.definition())
    await _check_references(rt, definition)
    name = check_storable(body.name.strip(), "name")
    if not name:
        raise ActionError("invalid_name", "a trigger's name is 1 to 200 characters")
    async with rt.db.write() as s:
        count = (await run(s, select(func.count(TRIGGER.id)).where(TRIGGER.deleted_at.is_(None)))).scalar_one()
        if count >= MAX_TRIGGERS:
            raise ActionError("too_many_triggers", f"at most {MAX_TRIGGERS} triggers")
        trigger = Trigger(name=name, enabled=body.enabled, definition=definition.model_dump(mode="json"),
                          created_by=actor.id if actor is not None else None)
        s.add(trigger)
        await s.flush()
    return trigger


async def do_update_trigger(rt: Runtime, actor: Operator, trigger_id: int, changes: dict[str, Any]) -> Trigger:
    """Only what is given changes; the definition is checked whole afterwards. An edit bumps
    the version; switching it off (enabled false) pauses it."""
    check_can_manage(actor)
    async with rt.db.read() as s:
        current = await s.get(Trigger, trigger_id)
    if current is None or current.deleted_at is not None:
        raise NotFound("trigger_not_found", "no such trigger")
    name = changes.pop("name", None)
    enabled = changes.pop("enabled", None)
    definition = check_definition({**current.definition, **changes}) if changes else None
    if definition is not None:
        await _check_references(rt, definition)
    async with rt.db.write() as s:
        trigger = await s.get(Trigger, trigger_id)
        if trigger is None or trigger.deleted_at is not None:
            raise NotFound("trigger_not_found", "no such trigger")
        if name is not None:
            trigger.name = check_storable(name.strip(), "name") or trigger.name
        if enabled is not None:
            trigger.enabled = bool(enabled)
        if definition is not None:
            trigger.definition = definition.model_dump(mode="json")
            trigger.version += 1
        trigger.updated_at = utcnow()
        s.add(trigger)
        await s.flush()
    return trigger


async def do_delete_trigger(rt: Runtime, actor: Operator, trigger_id: int) -> None:
    """Gone from the list; its sends stay (the results), the waiting ones are cancelled."""
    check_can_manage(actor)
    async with rt.db.write() as s:
        trigger = await s.get(Trigger, trigger_id)
        if trigger is None or trigger.deleted_at is not None:
            raise NotFound("trigger_not_found", "no such trigger")
        trigger.deleted_at = trigger.updated_at = utcnow()
        trigger.enabled = False
        s.add(trigger)
        await run(s, update(TriggerSend.__table__).where(  # type: ignore[attr-defined]
            SEND.trigger_id == trigger_id, SEND.state == "scheduled").values(
            state="cancelled", reason="the trigger was deleted", lease_owner=None, lease_until=None))


async def do_duplicate_trigger(rt: Runtime, actor: Operator, trigger_id: int) -> Trigger:
    check_can_manage(actor)
    async with rt.db.read() as s:
        source = await s.get(Trigger, trigger_id)
    if source is None or source.deleted_at is not None:
        raise NotFound("trigger_not_found", "no such trigger")
    body = TriggerBody.model_validate({**source.definition, "name": f"{source.name[:190]} (copy)", "enabled": False})
    return await do_create_trigger(rt, actor, body)


async def do_ensure_demo_trigger(rt: Runtime) -> Trigger | None:
    """On the first start only (no trigger ever made): the demo site's greeting."""
    if not rt.settings.demo_trigger:
        return None
    async with rt.db.read() as s:
        if (await run(s, select(func.count(TRIGGER.id)))).scalar_one():
            return None
    return await do_create_trigger(rt, None, TriggerBody.model_validate(DEMO))
