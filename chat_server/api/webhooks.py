"""REST for outgoing webhooks (admins): endpoints, their secret (shown at creation and rotation
only), recent deliveries, and a test event."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from ..actions.errors import NotFound
from ..actions.webhooks import (
    EVENT_TYPES,
    do_create_endpoint,
    do_delete_endpoint,
    do_rotate_secret,
    do_send_test,
    do_update_endpoint,
)
from ..behaviour.filters import Storable
from ..models import WebhookDelivery, WebhookEndpoint
from ..reads import webhooks as reads
from . import schemas as sc
from .framework import Auth, Call, Operation, endpoint

EventType = Literal[
    "conversation.created", "message.created", "conversation.status_changed", "contact.created",
    "contact.updated", "contact.merged", "segment.entered", "segment.left", "trigger.fired",
]
Events = Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES))]
Name = Annotated[str, Field(min_length=1, max_length=200), Storable]
Url = Annotated[str, Field(min_length=1, max_length=2000), Storable]


class WebhookBody(sc.Body):
    name: Name
    url: Url
    events: Events
    enabled: bool = True


class WebhookUpdateBody(sc.Body):
    name: Name | None = None
    url: Url | None = None
    events: Events | None = None
    enabled: bool | None = None


class WebhookView(BaseModel):
    id: int
    name: str
    url: str
    events: list[str]
    enabled: bool
    secret_prefix: str  # the first characters, to tell secrets apart
    created_at: datetime
    updated_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    waiting: int = 0  # deliveries not yet delivered or failed


class WebhookWithSecret(WebhookView):
    secret: str  # shown in this answer only (creation, rotation)


class WebhookList(BaseModel):
    items: list[WebhookView]
    event_types: list[str]


class DeliveryView(BaseModel):
    id: int
    event_id: str
    event_type: str
    state: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    finished_at: datetime | None


class DeliveryList(BaseModel):
    items: list[DeliveryView]


class DeliveryQuery(BaseModel):
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class TestSent(BaseModel):
    delivery_id: int


def view(e: WebhookEndpoint, waiting: int = 0) -> WebhookView:
    return WebhookView(
        id=e.id or 0, name=e.name, url=e.url, events=list(e.events), enabled=e.enabled, secret_prefix=e.secret[:10],
        created_at=e.created_at, updated_at=e.updated_at, last_attempt_at=e.last_attempt_at,
        last_status_code=e.last_status_code, last_error=e.last_error, waiting=waiting)


def with_secret(e: WebhookEndpoint) -> WebhookWithSecret:
    return WebhookWithSecret(**view(e).model_dump(), secret=e.secret)


def delivery_view(d: WebhookDelivery) -> DeliveryView:
    return DeliveryView.model_validate(d, from_attributes=True)


async def list_webhooks(c: Call[None, None]) -> WebhookList:
    return WebhookList(items=[view(e, n) for e, n in await reads.endpoints(c.rt.db)], event_types=list(EVENT_TYPES))


async def create_webhook(c: Call[WebhookBody, None]) -> WebhookWithSecret:
    b = c.body
    return with_secret(await do_create_endpoint(c.rt, c.me, b.name, b.url, list(b.events), b.enabled))


async def update_webhook(c: Call[WebhookUpdateBody, None]) -> WebhookView:
    b = c.body
    events = [str(e) for e in b.events] if b.events is not None else None
    return view(await do_update_endpoint(c.rt, c.me, c.path_int("id"), b.name, b.url, events, b.enabled))


async def delete_webhook(c: Call[None, None]) -> dict[str, bool]:
    await do_delete_endpoint(c.rt, c.me, c.path_int("id"))
    return {"ok": True}


async def rotate_secret(c: Call[None, None]) -> WebhookWithSecret:
    return with_secret(await do_rotate_secret(c.rt, c.me, c.path_int("id")))


async def send_test(c: Call[None, None]) -> TestSent:
    return TestSent(delivery_id=await do_send_test(c.rt, c.me, c.path_int("id")))


async def list_deliveries(c: Call[None, DeliveryQuery]) -> DeliveryList:
    endpoint_id = c.path_int("id")
    if await reads.endpoint(c.rt.db, endpoint_id) is None:
        raise NotFound("webhook_not_found", "no such webhook")
    return DeliveryList(items=[delivery_view(d) for d in await reads.deliveries(c.rt.db, endpoint_id, c.query.limit)])


routes: list[Operation] = [
    endpoint("GET", "/webhooks", list_webhooks, summary="Webhook endpoints (admins), with their last status",
             response=WebhookList, auth=Auth.admin),
    endpoint("POST", "/webhooks", create_webhook,
             summary="Register a webhook endpoint (admins); its signing secret is shown in this answer only",
             body=WebhookBody, response=WebhookWithSecret, auth=Auth.admin, status=201),
    endpoint("PATCH", "/webhooks/{id:int}", update_webhook, summary="Change a webhook endpoint (admins)",
             body=WebhookUpdateBody, response=WebhookView, auth=Auth.admin),
    endpoint("DELETE", "/webhooks/{id:int}", delete_webhook,
             summary="Remove a webhook endpoint and its deliveries (admins)", auth=Auth.admin),
    endpoint("POST", "/webhooks/{id:int}/rotate-secret", rotate_secret,
             summary="Replace a webhook's signing secret (admins); the new one is shown in this answer only",
             response=WebhookWithSecret, auth=Auth.admin),
    endpoint("POST", "/webhooks/{id:int}/test", send_test,
             summary="Queue a webhook.test event for this endpoint (admins)", response=TestSent, auth=Auth.admin,
             status=202),
    endpoint("GET", "/webhooks/{id:int}/deliveries", list_deliveries,
             summary="A webhook's recent deliveries, newest first (admins)", query=DeliveryQuery,
             response=DeliveryList, auth=Auth.admin),
]
