"""Reading API keys: the admins' list (never the secret; only its hash is stored)."""

from __future__ import annotations

from sqlmodel import col, select

from ..db import Database
from ..models import ApiKey


async def api_keys(db: Database) -> list[ApiKey]:
    async with db.read() as s:
        return list((await s.exec(select(ApiKey).order_by(col(ApiKey.id)))).all())
