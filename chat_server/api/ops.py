"""Health, readiness and Prometheus metrics for whoever runs the server."""

from __future__ import annotations

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
    rt: Runtime = request.state.rt
    return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def routes() -> list[Route]:
    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]
