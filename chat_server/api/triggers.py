"""REST for triggers: list (with matched / sent), create, read, change, pause, duplicate,
delete; the template preview against a real contact; explain; the dry run."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from ..actions.errors import ActionError, NotFound
from ..actions.triggers import (
    check_definition,
    do_create_trigger,
    do_delete_trigger,
    do_duplicate_trigger,
    do_update_trigger,
)
from ..behaviour.filters import Storable
from ..models import Contact
from ..models.ids import RowId
from ..models.trigger import Trigger
from ..models.types import utcnow
from ..reads import triggers as reads
from ..triggers.definition import Audience, Definition, Goal, Hours, Limits, Sender, TriggerBody, Variant, When
from ..triggers.dry_run import dry_run
from ..triggers.explain import explain
from ..triggers.templates import TemplateError, contact_context, render
from . import schemas as sc
from .framework import Auth, Call, Operation, endpoint

Days = Annotated[int, Field(ge=1, le=90)]


class TriggerPatch(sc.Body):
    """Only the fields given change; the result is checked as a whole definition."""

    name: Annotated[str, Field(min_length=1, max_length=200), Storable] | None = None
    enabled: bool | None = None
    when: When | None = None
    audience: Audience | None = None
    delay_seconds: Annotated[int, Field(ge=0, le=30 * 86_400)] | None = None
    channel: Literal["widget_chat", "widget_popup", "lead_form", "email", "telegram", "vk", "best_available"] | None = None
    sender: Sender | None = None
    variants: Annotated[list[Variant], Field(min_length=1, max_length=5)] | None = None
    control_percent: Annotated[int, Field(ge=0, le=90)] | None = None
    limits: Limits | None = None
    hours: Hours | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    goal: Goal | None = None


class TriggerView(BaseModel):
    id: int
    name: str
    enabled: bool
    version: int
    definition: Definition
    created_at: datetime
    updated_at: datetime
    created_by: int | None
    matched: int
    sent: int


class TriggerList(BaseModel):
    items: list[TriggerView]


class PreviewBody(sc.Body):
    text: Annotated[str, Field(min_length=1, max_length=5000), Storable]
    contact_id: RowId


class PreviewResult(BaseModel):
    text: str


class ExplainQuery(sc.Body):
    contact_id: RowId


class DryRunBody(sc.Body):
    days: Days = 7


class DefinitionDryRunBody(Definition):
    days: Days = 7


class Line(BaseModel):
    condition: str
    ok: bool
    value: str


class HoursLine(Line):
    next_opening: str | None


class ExplainView(BaseModel):
    trigger_id: int
    contact_id: int
    at: str
    would_send_now: bool
    failing: list[str]
    conditions: list[Line]
    limits: list[Line]
    hours: HoursLine
    channel: dict[str, str | None]
    group: str
    last_fired: dict[str, Any] | None
    sends: list[dict[str, Any]]


class DryRunView(BaseModel):
    supported: bool
    reason: str | None
    fired: int
    contacts: int
    control: int
    days: int
    events_read: int = 0
    sample: list[dict[str, Any]]


def view(t: Trigger, matched: int = 0, sent: int = 0) -> TriggerView:
    assert t.id is not None
    return TriggerView(id=t.id, name=t.name, enabled=t.enabled, version=t.version,
                       definition=Definition.model_validate(t.definition), created_at=t.created_at,
                       updated_at=t.updated_at, created_by=t.created_by, matched=matched, sent=sent)


async def _found(c: Call[Any, Any]) -> Trigger:
    async with c.rt.db.read() as s:
        trigger = await reads.get_trigger(s, c.path_int("id"))
    if trigger is None:
        raise NotFound("trigger_not_found", "no such trigger")
    return trigger


async def _counted(c: Call[Any, Any], t: Trigger) -> TriggerView:
    assert t.id is not None
    async with c.rt.db.read() as s:
        matched, sent = (await reads.counts(s, [t.id])).get(t.id, (0, 0))
    return view(t, matched, sent)


async def list_triggers(c: Call[None, None]) -> TriggerList:
    async with c.rt.db.read() as s:
        triggers = await reads.live_triggers(s)
        counted = await reads.counts(s, [t.id for t in triggers if t.id is not None])
    return TriggerList(items=[view(t, *counted.get(t.id or 0, (0, 0))) for t in triggers])


async def create_trigger(c: Call[TriggerBody, None]) -> TriggerView:
    return view(await do_create_trigger(c.rt, c.me, c.body))


async def get_trigger(c: Call[None, None]) -> TriggerView:
    return await _counted(c, await _found(c))


async def update_trigger(c: Call[TriggerPatch, None]) -> TriggerView:
    changes = c.body.model_dump(mode="json", include=c.body.model_fields_set)
    return await _counted(c, await do_update_trigger(c.rt, c.me, c.path_int("id"), changes))


async def delete_trigger(c: Call[None, None]) -> dict[str, bool]:
    await do_delete_trigger(c.rt, c.me, c.path_int("id"))
    return {"ok": True}


async def duplicate_trigger(c: Call[None, None]) -> TriggerView:
    return view(await do_duplicate_trigger(c.rt, c.me, c.path_int("id")))


async def preview(c: Call[PreviewBody, None]) -> PreviewResult:
    async with c.rt.db.read() as s:
        contact = await s.get(Contact, c.body.contact_id)
    if contact is None:
        raise NotFound("contact_not_found", "no such contact")
    try:
        return PreviewResult(text=render(c.body.text, contact_context(contact)))
    except TemplateError as exc:
        raise Unprocessable("template_failed", str(exc)) from exc


class Unprocessable(ActionError):
    status = 422


async def explain_trigger(c: Call[None, ExplainQuery]) -> ExplainView:
    trigger = await _found(c)
    async with c.rt.db.read() as s:
        found = await explain(s, trigger, c.query.contact_id, utcnow())
    if found is None:
        raise NotFound("contact_not_found", "no such contact")
    return ExplainView.model_validate(found)


async def dry_run_saved(c: Call[DryRunBody, None]) -> DryRunView:
    trigger = await _found(c)
    async with c.rt.db.read() as s:
        result = await dry_run(s, check_definition(trigger.definition), c.body.days, utcnow(), trigger.id or 0)
    return DryRunView.model_validate(result)


async def dry_run_unsaved(c: Call[DefinitionDryRunBody, None]) -> DryRunView:
    definition = Definition.model_validate(c.body.model_dump(exclude={"days"}))
    async with c.rt.db.read() as s:
        result = await dry_run(s, definition, c.body.days, utcnow())
    return DryRunView.model_validate(result)


routes: list[Operation] = [
    endpoint("GET", "/triggers", list_triggers, summary="Triggers with how many contacts each matched and was sent",
             response=TriggerList),
    endpoint("POST", "/triggers", create_trigger, summary="Create a trigger (admins)", body=TriggerBody,
             response=TriggerView, auth=Auth.admin, status=201),
    endpoint("POST", "/triggers/preview", preview, summary="A variant's text rendered for a real contact",
             body=PreviewBody, response=PreviewResult),
    endpoint("POST", "/triggers/dry-run", dry_run_unsaved,
             summary="How often an unsaved definition would have fired over the stored events of the last N days",
             body=DefinitionDryRunBody, response=DryRunView),
    endpoint("GET", "/triggers/{id:int}", get_trigger, summary="One trigger", response=TriggerView),
    endpoint("PATCH", "/triggers/{id:int}", update_trigger, summary="Change, pause or resume a trigger (admins)",
             body=TriggerPatch, response=TriggerView, auth=Auth.admin),
    endpoint("DELETE", "/triggers/{id:int}", delete_trigger, summary="Delete a trigger; its results stay (admins)",
             auth=Auth.admin),
    endpoint("POST", "/triggers/{id:int}/duplicate", duplicate_trigger, summary="Copy a trigger, switched off (admins)",
             response=TriggerView, auth=Auth.admin, status=201),
    endpoint("GET", "/triggers/{id:int}/explain", explain_trigger,
             summary="Why the trigger would or would not fire for a contact: each condition with its value",
             query=ExplainQuery, response=ExplainView),
    endpoint("POST", "/triggers/{id:int}/dry-run", dry_run_saved,
             summary="How often the trigger would have fired over the stored events of the last N days",
             body=DryRunBody, response=DryRunView),
]
