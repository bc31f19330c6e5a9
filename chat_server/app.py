"""create_app(settings) -> Starlette: routes, middleware and lifespan, composed in plain sight."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypedDict

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from integrations.base import AdapterRegistry

from . import migrate
from .actions.arrivals import Arrivals
from .actions.inbound_batch import contact_message_writes
from .actions.operators import OnlineOperators, do_ensure_first_admin
from .actions.site import do_ensure_site
from .actions.tracking import event_writes
from .actions.triggers import do_ensure_demo_trigger
from .actions.webhooks import WebhookDirectory
from .api import (
    api_keys,
    assets,
    attachments,
    auth,
    contacts,
    conversations,
    events,
    messages,
    openapi,
    operators,
    ops,
    personal_data,
    reach,
    reports,
    saved_replies,
    scoring,
    segments,
    site,
    tracking,
    triggers,
    visitor_session,
    webhooks,
)
from .api import channels as api_channels
from .api import trigger_results as api_trigger_results
from .api.assets import WidgetCors
from .api.framework import Operation
from .bus import make_bus
from .channels import ChannelService, default_adapters
from .db import open_database
from .file_store import open_file_store
from .login_limits import LoginLimits
from .metrics import Metrics
from .outbound import OutboundWorker
from .realtime.backfill import make_backfill
from .realtime.hub import Hub
from .realtime.inbox import inbox_endpoint
from .realtime.ratelimit import RateLimiter
from .realtime.services import SocketServices
from .realtime.sessions import presence_forever, recheck_forever, widgets_seen_forever
from .realtime.tokens import visitor_tokens
from .realtime.widget import widget_endpoint
from .runtime import Runtime
from .settings import Settings
from .sweeps import start_sweeps
from .triggers.worker import TriggerWorker
from .webhooks import WebhookWorker

log = logging.getLogger(__name__)



class State(TypedDict):
    rt: Runtime
    sockets: SocketServices
    channels: ChannelService


def static_dir(name: str) -> Path:
    """A front end's folder: beside the package in a checkout or an editable install, or
    installed as its own top-level folder (pyproject's package-data) by `pip install .`."""
    beside = Path(__file__).resolve().parent.parent / name
    if beside.is_dir():
        return beside
    spec = importlib.util.find_spec(name)
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    raise RuntimeError(f"the {name} folder is missing from this installation")


# The inbox shows what strangers typed; should a bug ever put it into the page as markup, the
# browser still runs only our own scripts and talks only to this server.
INBOX_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' blob: data: https: http:; media-src 'self' blob:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class InboxFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(INBOX_HEADERS)
        return response


# The REST API under /api/v1, one list per resource; the OpenAPI document describes them all.
API: list[Operation] = [
    *auth.routes, *operators.routes, *conversations.routes, *messages.routes, *contacts.routes, *events.routes,
    *saved_replies.routes, *reports.routes, *api_channels.routes, *attachments.routes, *site.routes,
    *personal_data.routes, *visitor_session.routes, *segments.routes, *scoring.routes, *api_keys.routes,
    *tracking.routes,
    *reach.routes,
    *webhooks.routes,
    *triggers.routes,
    *api_trigger_results.routes,
]


def build_routes(settings: Settings) -> list[BaseRoute]:
    return [
        *ops.routes(),
        api_channels.webhook_route,
        *(operation.route() for operation in [*API, openapi.describing(API)]),
        WebSocketRoute("/ws/widget", widget_endpoint),
        WebSocketRoute("/ws/inbox", inbox_endpoint),
        *assets.routes(settings.widget_dir, settings.demo_site),
        Mount("/inbox", InboxFiles(directory=static_dir("inbox_ui"), html=True), name="inbox"),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    return JSONResponse({"error": {"code": codes.get(exc.status_code, "http_error"), "message": exc.detail}},
                        status_code=exc.status_code)


def create_app(settings: Settings | None = None, adapters: AdapterRegistry | None = None) -> Starlette:
    """`adapters` replaces the channel adapters (a test points them at local servers)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        if settings.auto_migrate:
            await migrate.upgrade_async(settings.effective_database_url)
        # The runtime, wired here and nowhere else. Every write's news goes to the bus once it
        # has committed (db.py's unit of work); the bus brings the news of every process to
        # its listeners here: the "anyone online?" cache first (a presence change must be
        # heard before the next widget asks), then the hub, which hands it to the sockets.
        metrics = Metrics()
        bus = make_bus(settings.redis_url)
        db = open_database(settings, publish=bus.publish)
        metrics.count_statements([db.read_engine, db.write_engine])
        rt = Runtime(settings=settings, db=db, bus=bus, metrics=metrics,
                     inbound_writes=contact_message_writes(db, metrics),  # group commit of contacts' messages
                     login_limits=LoginLimits(settings), files=open_file_store(settings))
        rt.event_writes = event_writes(rt)  # group commit of behaviour events (it scores and checks segments)
        # Outgoing webhooks: what a write emits becomes deliveries in that same transaction.
        rt.webhooks = WebhookDirectory()
        db.write_events = rt.webhooks.write_events
        await rt.webhooks.refresh(db)
        arrivals = Arrivals(rt)  # group commit of widget connects
        online = OnlineOperators()
        backfill = make_backfill(rt)
        hub = Hub(backfill, metrics)
        sockets = SocketServices(
            rt=rt, hub=hub, backfill=backfill, tokens=visitor_tokens(settings),
            connect_limiter=RateLimiter(settings.ip_connects_per_minute),
            message_limiter=RateLimiter(settings.visitor_messages_per_minute),
            event_limiter=RateLimiter(settings.visitor_events_per_minute), arrivals=arrivals, online=online,
        )
        app.state.sockets = sockets  # so the process's SIGTERM handler can close sockets first
        await bus.start([online, hub])
        await do_ensure_site(rt)
        first_admin = await do_ensure_first_admin(rt)
        await do_ensure_demo_trigger(rt)
        if first_admin:
            email, password = first_admin
            print(  # noqa: T201 - shown once to the person who started the server
                f"\n  First start: created the admin operator.\n  Log in at /inbox/ as {email}"
                f" with password {password}\n  (change it in the inbox under Admin).\n", flush=True)
        sweeps = start_sweeps(rt)
        rechecker = asyncio.create_task(recheck_forever(rt, hub))
        widgets_seen = asyncio.create_task(widgets_seen_forever(rt, hub))
        presence = asyncio.create_task(presence_forever(rt, hub)) if settings.away_after_minutes > 0 else None
        channels = ChannelService(rt, adapters or default_adapters())
        outbound = OutboundWorker(rt, channels)
        trigger_worker = TriggerWorker(rt, settings.trigger_poll_seconds)
        trigger_worker.start()
        if settings.channel_workers:
            await channels.start()
            outbound.start()
        webhook_worker = WebhookWorker(rt, rt.webhooks)  # leased deliveries: safe in every process
        webhook_worker.start()
        try:
            yield {"rt": rt, "sockets": sockets, "channels": channels}
        finally:
            for sweep in sweeps:
                sweep.cancel()
            rechecker.cancel()
            widgets_seen.cancel()
            if presence is not None:
                presence.cancel()
            await trigger_worker.stop()
            await outbound.stop()
            await webhook_worker.stop()
            await channels.stop()
            await hub.close_all(1001)
            await rt.bus.stop()
            await rt.limits().close()
            await rt.files.close()
            await rt.db.dispose()

    exception_handlers: dict[Any, Any] = {HTTPException: _http_error}
    return Starlette(routes=build_routes(settings), lifespan=lifespan, exception_handlers=exception_handlers,
                     middleware=[Middleware(WidgetCors)])
