"""The widget's static files and the demo site, plus CORS for what the widget calls from
other sites' pages. The widget authenticates with its visitor token in a header, never a
cookie, so answering every origin gives no page anything it did not already hold."""

from __future__ import annotations

from pathlib import Path

from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from ..actions.site import get_site
from ..runtime import Runtime

ASSET_HEADERS = {
    # Module scripts loaded from another site's page are fetched in CORS mode.
    "Access-Control-Allow-Origin": "*",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=300",
}
DEMO_PAGES = {"": "index.html", "pricing": "pricing.html", "product": "product.html"}
CORS_PATHS = ("/api/v1/widget/", "/api/v1/attachments/")


class WidgetFiles(StaticFiles):
    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers.update(ASSET_HEADERS)
        return response


class WidgetCors:
    """CORS (any origin, no credentials) on the widget's REST paths only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=["*"], allow_methods=["GET", "POST"],
                                   allow_headers=["authorization", "content-type"], max_age=600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(CORS_PATHS):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def routes(widget_dir: Path, demo: bool) -> list[BaseRoute]:
    async def widget_js(request: Request) -> Response:
        return FileResponse(widget_dir / "widget.js", media_type="text/javascript", headers=ASSET_HEADERS)

    async def demo_page(request: Request) -> Response:
        page = DEMO_PAGES.get(request.path_params.get("page", "").removesuffix(".html"))
        if page is None:
            return HTMLResponse("<h1>Not found</h1>", status_code=404)
        rt: Runtime = request.state.rt
        site = await get_site(rt)
        html = (widget_dir / "demo" / page).read_text(encoding="utf-8")
        # The key is URL-safe base64: nothing in it can break out of the attribute.
        return HTMLResponse(html.replace("__SITE_KEY__", site.site_key))

    found: list[BaseRoute] = [
        Route("/widget.js", widget_js),
        Mount("/widget", app=WidgetFiles(directory=widget_dir, check_dir=False), name="widget"),
    ]
    if demo:
        found += [
            Mount("/demo/static", app=WidgetFiles(directory=widget_dir / "demo", check_dir=False)),
            Route("/demo/", demo_page),
            Route("/demo/{page}", demo_page),
            Route("/demo/{page}/{rest:path}", demo_page),  # the product page's client-side routes
        ]
    return found
