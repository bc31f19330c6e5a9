"""API keys for the site's backend: admins create them (the secret is shown once, only its
SHA-256 is kept), see when each was last used, and revoke them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from ..models import ApiKey, Operator, Role
from ..models.types import utcnow
from ..runtime import Runtime
from .errors import ActionError, Forbidden, NotFound
from .membership import run
from .validation import check_storable

PREFIX = "csk_"
# "Last used" is written at most this often per key, so a busy backend does not turn every
# call into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
TABLE = ApiKey.__table__.c  # type: ignore[attr-defined]


class Unauthorized(ActionError):
    status = 401


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def check_can_manage(actor: Operator) -> None:
    if actor.role != Role.admin:
        raise Forbidden("admin_only", "only admins manage API keys")


async def do_create_api_key(rt: Runtime, actor: Operator, name: str) -> tuple[ApiKey, str]:
    """The new key and its secret: the only time the secret is anywhere but with the caller."""
    check_can_manage(actor)
    name = check_storable(name.strip(), "name")
    if not 1 <= len(name) <= 200:
        raise ActionError("invalid_name", "a key's name is 1 to 200 characters")
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=secret[:12], key_hash=key_hash(secret), created_by_id=actor.id)
    async with rt.db.write() as s:
        s.add(key)
    return key, secret


async def do_revoke_api_key(rt: Runtime, actor: Operator, key_id: int) -> ApiKey:
    check_can_manage(actor)
    async with rt.db.write() as s:
        key = await s.get(ApiKey, key_id)
        if key is None:
            raise NotFound("api_key_not_found", "no such API key")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            s.add(key)
    return key


async def authenticate_api_key(rt: Runtime, secret: str | None) -> ApiKey:
    """The key behind `Authorization: Bearer csk_…`, or 401."""
    if not secret or not secret.startswith(PREFIX):
        raise Unauthorized("unauthorized", "send 'Authorization: Bearer <API key>' (create keys in the inbox, Admin)")
    wanted = key_hash(secret)
    async with rt.db.read() as s:
        key = (await run(s, select(ApiKey.__table__).where(TABLE.key_hash == wanted))).first()  # type: ignore[attr-defined]
    if key is None or not hmac.compare_digest(key.key_hash, wanted) or key.revoked_at is not None:
        raise Unauthorized("unauthorized", "this API key is not valid or was revoked")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        async with rt.db.write() as s:
            await run(s, update(ApiKey.__table__).where(TABLE.id == key.id).values(last_used_at=now))  # type: ignore[attr-defined]
    return ApiKey.model_validate(dict(key._mapping))
