"""Site settings: the widget's key, the origins that may embed it, the identity-verification
secret, its colour and texts. One site per server; the row is created on first start."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from ..models import Operator, Role, SiteSettings
from ..models.types import utcnow
from ..runtime import Runtime
from .errors import ActionError, Forbidden
from .validation import check_properties, check_storable

SITE_ID = 1
LANGUAGES = ("auto", "ru", "en")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
# The widget's own texts a site may override (per language).
TEXT_KEYS = (
    "title", "subtitle", "placeholder", "send", "offline", "email_prompt", "email_saved", "launcher",
    "close", "attach", "new_message", "continue_in", "sending", "sent", "delivered", "read", "typing",
)


async def get_site(rt: Runtime) -> SiteSettings:
    async with rt.db.read() as s:
        site = await s.get(SiteSettings, SITE_ID)
    if site is not None:
        return site
    return await do_ensure_site(rt)


async def do_ensure_site(rt: Runtime) -> SiteSettings:
    """The site row, created with a random key on first use; replicas racing agree on one."""
    try:
        async with rt.db.write() as s:
            site = await s.get(SiteSettings, SITE_ID)
            if site is None:
                site = SiteSettings(id=SITE_ID, site_key=secrets.token_urlsafe(12))
                s.add(site)
                await s.flush()
            return site
    except IntegrityError:
        async with rt.db.read() as s:
            site = (await s.exec(select(SiteSettings).where(col(SiteSettings.id) == SITE_ID))).one()
        return site


def check_origin(origin: str) -> str:
    origin = check_storable(origin.strip().rstrip("/"), "origin")
    parts = urlsplit(origin)
    if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc or parts.path
                          or parts.query or len(origin) > 200):
        raise ActionError("invalid_origin", f"{origin!r} is not an origin like https://shop.example")
    return origin


def check_texts(texts: dict[str, Any]) -> dict[str, dict[str, str]]:
    check_properties(texts, "texts")
    clean: dict[str, dict[str, str]] = {}
    for lang, values in texts.items():
        if lang not in ("ru", "en") or not isinstance(values, dict):
            raise ActionError("invalid_texts", "texts are {\"ru\": {...}, \"en\": {...}}")
        for key, value in values.items():
            if key not in TEXT_KEYS or not isinstance(value, str) or len(value) > 300:
                raise ActionError("invalid_texts", f"unknown text {key!r} or not a string of up to 300 characters")
        clean[lang] = dict(values)
    return clean


async def do_update_site(rt: Runtime, operator: Operator, changes: dict[str, Any]) -> SiteSettings:
    """An admin changes the site's settings; only the fields given change."""
    if operator.role != Role.admin:
        raise Forbidden("admin_only", "only admins may change the site settings")
    if "allowed_origins" in changes:
        changes["allowed_origins"] = list(dict.fromkeys(check_origin(o) for o in changes["allowed_origins"]))
    if changes.get("identity_secret") is not None:
        secret = check_storable(changes["identity_secret"], "identity_secret")
        if len(secret) < 16:
            raise ActionError("weak_secret", "the identity secret is at least 16 characters")
    if "texts" in changes:
        changes["texts"] = check_texts(changes["texts"])
    if "color" in changes and not COLOR_RE.match(changes["color"]):
        raise ActionError("invalid_color", "colour is #rrggbb")
    if "language" in changes and changes["language"] not in LANGUAGES:
        raise ActionError("invalid_language", "language is auto, ru or en")
    if "name" in changes:
        check_storable(changes["name"], "name")
    if "timezone" in changes and changes["timezone"] not in available_timezones():
        raise ActionError("invalid_timezone", "the time zone is an IANA name such as 'Europe/Moscow'")
    if changes.pop("rotate_site_key", False):
        changes["site_key"] = secrets.token_urlsafe(12)
    await get_site(rt)
    async with rt.db.write() as s:
        site = await s.get(SiteSettings, SITE_ID)
        assert site is not None
        for key, value in changes.items():
            setattr(site, key, value)
        site.updated_at = utcnow()
        s.add(site)
        await s.flush()
    return site


def secret_hint(secret: str | None) -> str | None:
    """Enough to recognise which secret is set, never enough to use it."""
    return None if not secret else "…" + secret[-4:]


def site_allows(site: SiteSettings, origin: str) -> bool:
    # Exact origins, scheme included: https://shop.example does not let http://shop.example in.
    origin = origin.rstrip("/").lower()
    return "*" in site.allowed_origins or any(origin == o.lower() for o in site.allowed_origins)
