"""Lead scoring (filled in below)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from ..runtime import Runtime


async def score_events(s: AsyncSession, rt: Runtime, pairs: list[tuple[Any, int]], touches: dict[int, Any],
                       now: datetime) -> None:
    return None
