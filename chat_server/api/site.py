"""Site settings (admins) and the public widget configuration the widget fetches."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from ..actions.errors import NotFound
from ..actions.site import do_update_site, get_site, secret_hint
from ..models import SiteSettings
from .framework import Auth, Call, Operation, endpoint


class SiteView(BaseModel):
    site_key: str
    name: str
    allowed_origins: list[str]
    identity_secret_set: bool
    identity_secret_hint: str | None
    texts: dict[str, dict[str, str]]
    color: str
    language: str
    snippet: str
    auto_messages_per_day: int
    timezone: str


class SiteUpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=200)] | None = None
    allowed_origins: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)] | None = None
    # null (or "") switches identity verification off.
    identity_secret: Annotated[str, Field(max_length=200)] | None = None
    texts: dict[str, dict[str, Any]] | None = None
    color: Annotated[str, Field(max_length=20)] | None = None
    language: Literal["auto", "ru", "en"] | None = None
    rotate_site_key: bool = False
    # Automatic messages one contact may get per day across all triggers and channels (0: none).
    auto_messages_per_day: Annotated[int, Field(ge=0, le=100)] | None = None
    # The site's IANA time zone (triggers' working hours given as "site").
    timezone: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class SiteQuery(BaseModel):
    site: Annotated[str, Field(min_length=1, max_length=64)]


class WidgetConfig(BaseModel):
    site_key: str
    color: str
    language: str
    texts: dict[str, dict[str, str]]
    identity_verification: bool


def site_view(site: SiteSettings, base_url: str) -> SiteView:
    snippet = f'<script src="{base_url}/widget.js" data-site="{site.site_key}" async></script>'
    return SiteView(
        site_key=site.site_key, name=site.name, allowed_origins=site.allowed_origins,
        identity_secret_set=bool(site.identity_secret), identity_secret_hint=secret_hint(site.identity_secret),
        texts=site.texts, color=site.color, language=site.language, snippet=snippet,
        auto_messages_per_day=site.auto_messages_per_day, timezone=site.timezone,
    )


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def read_site(c: Call[None, None]) -> SiteView:
    return site_view(await get_site(c.rt), _base_url(c.request))


async def update_site(c: Call[SiteUpdateBody, None]) -> SiteView:
    body = c.body
    changes = {k: getattr(body, k) for k in body.model_fields_set if k != "rotate_site_key"}
    if changes.get("identity_secret") == "":
        changes["identity_secret"] = None
    for key in ("allowed_origins", "texts", "color", "language", "name", "auto_messages_per_day", "timezone"):
        if key in changes and changes[key] is None:
            del changes[key]  # only the secret can be cleared
    changes["rotate_site_key"] = body.rotate_site_key
    return site_view(await do_update_site(c.rt, c.me, changes), _base_url(c.request))


async def widget_config(c: Call[None, SiteQuery]) -> WidgetConfig:
    site = await get_site(c.rt)
    if c.query.site != site.site_key:
        raise NotFound("site_not_found", "no site with this key")
    return WidgetConfig(site_key=site.site_key, color=site.color, language=site.language, texts=site.texts,
                        identity_verification=bool(site.identity_secret))


routes: list[Operation] = [
    endpoint("GET", "/site", read_site, summary="The site's widget settings (the identity secret only as a hint)",
             response=SiteView, auth=Auth.admin),
    endpoint("PATCH", "/site", update_site, summary="Change the site's widget settings (admins)", body=SiteUpdateBody,
             response=SiteView, auth=Auth.admin),
    endpoint("GET", "/widget/config", widget_config, summary="What the widget needs to start (public)", query=SiteQuery,
             response=WidgetConfig, auth=Auth.public),
]
