"""Health, readiness and Prometheus metrics for whoever runs the server."""

from __future__ import annotations

import hmac
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..runtime import Runtime

log = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the database and (if configured) Redis answer."""
    rt: Runtime = request.state.rt
    checks: dict[str, str] = {}
    for name, probe in (("database", rt.db.ping), ("bus", rt.bus.ping)):
        try:
            await probe()
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; say which
            log.warning("readiness check failed", extra={"check": name, "error": str(exc)})
            checks[name] = "unreachable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    """Counts of sockets and messages tell outsiders how busy the site is: only for whoever
    holds CHAT_METRICS_TOKEN, and not there at all while it is unset."""
    rt: Runtime = request.state.rt
    expected = rt.settings.metrics_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if not expected:
        return JSONResponse({"error": {"code": "not_found", "message": "Not Found"}}, status_code=404)
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return JSONResponse({"error": {"code": "unauthorized", "message": "send 'Authorization: Bearer <metrics token>'"}},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def routes() -> list[Route]:
    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
