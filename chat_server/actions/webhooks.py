"""Outgoing webhooks: admins' endpoints (created with a secret shown once, edited, rotated,
removed), and the events a write emits (`s.emit(...)`) turned into deliveries in that write's
own transaction. The worker that sends them is chat_server/webhooks.py."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Boolean, String, Text, delete, insert, literal, select, union_all

from ..db import Database, WriteSession
from ..models import Operator, Role, WebhookDelivery, WebhookEndpoint
from ..models.ids import Int64
from ..models.types import UTCDateTime, utcnow
from ..runtime import Runtime
from ..settings import Settings
from ..webhook_addresses import AddressRule
from .errors import ActionError, Forbidden, NotFound
from .membership import run
from .validation import check_storable

# Every event an endpoint can ask for; docs/webhooks.md describes each one's data.
EVENT_TYPES = (
    "conversation.created", "message.created", "conversation.status_changed",
    "contact.created", "contact.updated", "contact.merged",
    "segment.entered", "segment.left", "trigger.fired",
)
TEST_EVENT = "webhook.test"  # sent only by "Send test", to one endpoint
SECRET_PREFIX = "whsec_"
ENDPOINT = WebhookEndpoint.__table__.c  # type: ignore[attr-defined]
DELIVERY = WebhookDelivery.__table__  # type: ignore[attr-defined]
# SQLite refuses a compound SELECT of more than 500 parts; a big batch goes in several inserts.
_UNION_LIMIT = 400


class Invalid(ActionError):
    status = 422


def check_can_manage(actor: Operator) -> None:
    if actor.role != Role.admin:
        raise Forbidden("admin_only", "only admins manage webhooks")


def check_url(rt: Runtime, url: str) -> str:
    """An https URL; plain http only to a loopback address and only when the server allows it
    (CHAT_WEBHOOK_ALLOW_HTTP_LOOPBACK, for development and tests)."""
    url = check_storable(url.strip(), "url")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise Invalid("invalid_url", "the URL cannot be read") from None
    if not host or len(url) > 2000:
        raise Invalid("invalid_url", "give a full URL such as https://crm.example.com/hooks/chat (at most 2,000 characters)")
    if parts.scheme == "http" and not (rt.settings.webhook_allow_http_loopback and _loopback(host)):
        raise Invalid("invalid_url", "webhook URLs must start with https:// (plain http is allowed only to a loopback "
                                     "address, and only with CHAT_WEBHOOK_ALLOW_HTTP_LOOPBACK=true)")
    if parts.scheme not in ("http", "https"):
        raise Invalid("invalid_url", "webhook URLs must start with https://")
    if address_rule(rt.settings).refuses_literal(host.strip("[]")):
        raise Invalid("invalid_url", "webhooks go to public addresses: this one is private, loopback or reserved "
                                     "(CHAT_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true allows private ones)")
    return url


def address_rule(settings: Settings) -> AddressRule:
    return AddressRule(loopback=settings.webhook_allow_http_loopback, private=settings.webhook_allow_private_networks)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events))
    unknown = [e for e in chosen if e not in EVENT_TYPES]
    if unknown:
        raise Invalid("invalid_events", f"unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}")
    if not chosen:
        raise Invalid("invalid_events", "choose at least one event")
    return chosen


def check_name(name: str) -> str:
    name = check_storable(name.strip(), "name")
    if not 1 <= len(name) <= 200:
        raise Invalid("invalid_name", "a webhook's name is 1 to 200 characters")
    return name


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def do_create_endpoint(rt: Runtime, actor: Operator, name: str, url: str, events: list[str],
                             enabled: bool = True) -> WebhookEndpoint:
    """The new endpoint, its secret included: the only answer that shows it whole."""
    check_can_manage(actor)
    endpoint = WebhookEndpoint(name=check_name(name), url=check_url(rt, url), events=check_events(events),
                               enabled=enabled, secret=new_secret())
    async with rt.db.write() as s:
        s.add(endpoint)
    await refresh(rt)
    return endpoint


async def do_update_endpoint(rt: Runtime, actor: Operator, endpoint_id: int, name: str | None = None,
                             url: str | None = None, events: list[str] | None = None,
                             enabled: bool | None = None) -> WebhookEndpoint:
    check_can_manage(actor)
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = check_name(name)
    if url is not None:
        values["url"] = check_url(rt, url)
    if events is not None:
        values["events"] = check_events(events)
    if enabled is not None:
        values["enabled"] = enabled
    async with rt.db.write() as s:
        endpoint = await _get(s, endpoint_id)
        for key, value in values.items():
            setattr(endpoint, key, value)
        endpoint.updated_at = utcnow()
        s.add(endpoint)
    await refresh(rt)
    return endpoint


async def do_rotate_secret(rt: Runtime, actor: Operator, endpoint_id: int) -> WebhookEndpoint:
    """A new secret, from the next try of every delivery on (the old one stops at once)."""
    check_can_manage(actor)
    async with rt.db.write() as s:
        endpoint = await _get(s, endpoint_id)
        endpoint.secret, endpoint.updated_at = new_secret(), utcnow()
        s.add(endpoint)
    return endpoint


async def do_delete_endpoint(rt: Runtime, actor: Operator, endpoint_id: int) -> None:
    check_can_manage(actor)
    async with rt.db.write() as s:
        endpoint = await _get(s, endpoint_id)
        await run(s, delete(DELIVERY).where(DELIVERY.c.endpoint_id == endpoint_id))
        await s.delete(endpoint)
    await refresh(rt)


async def do_send_test(rt: Runtime, actor: Operator, endpoint_id: int) -> int:
    """Queue a `webhook.test` event for this endpoint alone; the delivery's id."""
    check_can_manage(actor)
    async with rt.db.write() as s:
        endpoint = await _get(s, endpoint_id)
        event_id, body = envelope(TEST_EVENT, {"endpoint_id": endpoint_id, "sent_by": actor.id}, utcnow())
        delivery = WebhookDelivery(endpoint_id=endpoint_id, event_id=event_id, event_type=TEST_EVENT,
                                   order_key="test", body=body)
        s.add(delivery)
        await s.flush()
        assert delivery.id is not None and endpoint.id is not None
        s.on_commit(wake(rt))
    return delivery.id


async def _get(s: WriteSession, endpoint_id: int) -> WebhookEndpoint:
    endpoint = await s.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None:
        raise NotFound("webhook_not_found", "no such webhook")
    return endpoint


def wake(rt: Runtime) -> Any:
    directory = rt.webhooks
    return directory.queued.set if directory is not None else (lambda: None)


async def refresh(rt: Runtime) -> None:
    if rt.webhooks is not None:
        await rt.webhooks.refresh(rt.db)


def envelope(event_type: str, data: dict[str, Any], now: datetime) -> tuple[str, str]:
    """The event's id and the exact body every endpoint receives for it."""
    event_id = uuid.uuid4().hex
    body = json.dumps({"id": event_id, "type": event_type, "created_at": now.isoformat(), "data": data},
                      ensure_ascii=False, separators=(",", ":"), default=_plain)
    return event_id, body


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} cannot go into a webhook body")


class WebhookDirectory:
    """Which enabled endpoints want which event, kept in memory so that a write emitting an
    event nobody asked for costs no statement at all. Reloaded after every change made here
    and by the worker every few seconds (changes made by another process). A stale answer is
    safe: the insert re-reads which of the candidates are still enabled, and the worker
    cancels a delivery whose endpoint no longer wants its event."""

    def __init__(self) -> None:
        self.wanted: dict[str, list[int]] = {}
        self.queued = asyncio.Event()  # set once a transaction with deliveries committed: the worker wakes

    async def refresh(self, db: Database) -> None:
        async with db.read() as s:
            rows = (await run(s, select(ENDPOINT.id, ENDPOINT.events).where(ENDPOINT.enabled.is_(True)))).all()
        wanted: dict[str, list[int]] = {}
        for endpoint_id, events in rows:
            for event_type in events or []:
                wanted.setdefault(event_type, []).append(endpoint_id)
        self.wanted = wanted

    async def write_events(self, s: WriteSession) -> None:
        """The deliveries of every event the transaction emitted, in one statement (per 400)."""
        events, s.events = s.events, []
        now = utcnow()
        parts = []
        for event_type, order_key, data in events:
            targets = self.wanted.get(event_type)
            if not targets:
                continue
            event_id, body = envelope(event_type, data() if callable(data) else data, now)
            parts.append(select(
                ENDPOINT.id, literal(event_id, String), literal(event_type, String), literal(order_key[:60], String),
                literal(body, Text), literal("pending", String), literal(0, Int64),
                literal(now, UTCDateTime), literal(now, UTCDateTime),
            ).where(ENDPOINT.id.in_(targets), ENDPOINT.enabled == literal(True, Boolean)))
        columns = ["endpoint_id", "event_id", "event_type", "order_key", "body", "state", "attempts",
                   "next_attempt_at", "created_at"]
        for start in range(0, len(parts), _UNION_LIMIT):
            chunk = parts[start:start + _UNION_LIMIT]
            await run(s, insert(DELIVERY).from_select(columns, chunk[0] if len(chunk) == 1 else union_all(*chunk)))
        if parts:
            s.on_commit(self.queued.set)
