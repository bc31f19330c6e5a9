"""create_app(settings) -> Starlette: routes, middleware and lifespan, composed in plain sight."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Sequence
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
from .actions.conversations import do_wake_snoozed
from .actions.membership import do_sweep_segments
from .actions.operators import OnlineOperators, do_ensure_first_admin
from .actions.scoring import do_settle_expired_points
from .actions.site import do_ensure_site
from .api import assets, ops
from .api import channels as api_channels
from .api import routes as api_routes
from .api.assets import WidgetCors
from .bus import Dispatch, Dispatcher, Resync, make_bus
from .channels import ChannelService, default_adapters
from .db import open_database
from .metrics import Metrics
from .outbound import OutboundWorker
from .realtime.backfill import make_backfill
from .realtime.hub import Hub
from .realtime.inbox import inbox_endpoint
from .realtime.ratelimit import RateLimiter
from .realtime.services import SocketServices
from .realtime.tokens import VisitorTokens
from .realtime.widget import widget_endpoint
from .runtime import Runtime
from .settings import Settings

log = logging.getLogger(__name__)

SNOOZE_CHECK_SECONDS = 30
BEHAVIOUR_SWEEP_SECONDS = 60


def _observing(online: OnlineOperators, dispatch: Dispatcher) -> Dispatcher:
    """Presence news passes the process's "anyone online" answer on its way to the sockets."""

    def both(dispatches: Sequence[Dispatch]) -> None:
        online.observe(dispatches)
        dispatch(dispatches)

    return both


def _forgetting(online: OnlineOperators, resync: Resync) -> Resync:
    """News was lost: presence changes may be among it."""

    def both() -> None:
        online.forget()
        resync()

    return both


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


def build_routes(settings: Settings) -> list[BaseRoute]:
    return [
        *ops.routes(),
        *api_channels.routes(),
        *api_routes.routes(),
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


async def _wake_snoozed_forever(rt: Runtime) -> None:
    while True:
        await asyncio.sleep(SNOOZE_CHECK_SECONDS)
        try:
            await do_wake_snoozed(rt)
        except Exception:
            log.exception("waking snoozed conversations failed")


async def _sweep_behaviour_forever(rt: Runtime) -> None:
    """What time alone changes: segments with time windows, points that decayed."""
    while True:
        await asyncio.sleep(BEHAVIOUR_SWEEP_SECONDS)
        try:
            await do_settle_expired_points(rt)
            await do_sweep_segments(rt)
        except Exception:
            log.exception("the behaviour sweep failed")


def create_app(settings: Settings | None = None, adapters: AdapterRegistry | None = None) -> Starlette:
    """`adapters` replaces the channel adapters (a test points them at local servers)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        if settings.auto_migrate:
            await migrate.upgrade_async(settings.effective_database_url)
        metrics = Metrics()
        rt = Runtime(settings=settings, db=open_database(settings), bus=make_bus(settings.redis_url), metrics=metrics)
        metrics.count_statements([rt.db.read_engine, rt.db.write_engine])
        backfill = make_backfill(rt)
        hub = Hub(backfill, metrics)
        sockets = SocketServices(
            rt=rt, hub=hub, backfill=backfill, tokens=VisitorTokens(settings.effective_secret_key),
            connect_limiter=RateLimiter(settings.ip_connects_per_minute),
            message_limiter=RateLimiter(settings.visitor_messages_per_minute), arrivals=Arrivals(rt),
        )
        app.state.sockets = sockets  # so the process's SIGTERM handler can close sockets first
        await rt.bus.start(_observing(sockets.online, hub.dispatch), _forgetting(sockets.online, hub.resync))
        await do_ensure_site(rt)
        first_admin = await do_ensure_first_admin(rt)
        if first_admin:
            email, password = first_admin
            print(  # noqa: T201 - shown once to the person who started the server
                f"\n  First start: created the admin operator.\n  Log in at /inbox/ as {email}"
                f" with password {password}\n  (change it in the inbox under Admin).\n", flush=True)
        waker = asyncio.create_task(_wake_snoozed_forever(rt))
        sweeper = asyncio.create_task(_sweep_behaviour_forever(rt))
        channels = ChannelService(rt, adapters or default_adapters())
        outbound = OutboundWorker(rt, channels)
        if settings.channel_workers:
            await channels.start()
            outbound.start()
        try:
            yield {"rt": rt, "sockets": sockets, "channels": channels}
        finally:
            waker.cancel()
            sweeper.cancel()
            await outbound.stop()
            await channels.stop()
            await hub.close_all(1001)
            await rt.bus.stop()
            await rt.db.dispose()

    exception_handlers: dict[Any, Any] = {HTTPException: _http_error}
    return Starlette(routes=build_routes(settings), lifespan=lifespan, exception_handlers=exception_handlers,
                     middleware=[Middleware(WidgetCors)])
