"""Reading scores: the rules, a contact's breakdown per rule and their history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..models import Grading, ScoreEntry, ScoringRule
from ..models.types import utcnow


@dataclass
class RulePoints:
    rule_id: int
    name: str
    points: int  # unexpired, summed
    times: int  # awards counted (unexpired)


async def list_rules(s: AsyncSession) -> list[ScoringRule]:
    return list((await s.exec(select(ScoringRule).order_by(col(ScoringRule.id)))).all())


async def grading(s: AsyncSession) -> Grading | None:
    return await s.get(Grading, 1)


async def breakdown(s: AsyncSession, contact_id: int, now: datetime | None = None) -> list[RulePoints]:
    now = now or utcnow()
    rows = (await s.exec(
        select(ScoreEntry.rule_id, ScoringRule.name, func.sum(ScoreEntry.points), func.count())
        .join(ScoringRule, col(ScoringRule.id) == col(ScoreEntry.rule_id))
        .where(ScoreEntry.contact_id == contact_id,
               or_(col(ScoreEntry.expires_at).is_(None), col(ScoreEntry.expires_at) > now))
        .group_by(col(ScoreEntry.rule_id), col(ScoringRule.name)).order_by(col(ScoreEntry.rule_id))
    )).all()
    return [RulePoints(r[0], r[1], int(r[2] or 0), int(r[3])) for r in rows if r[2]]


async def history(s: AsyncSession, contact_id: int, limit: int = 100) -> list[ScoreEntry]:
    return list((await s.exec(select(ScoreEntry).where(ScoreEntry.contact_id == contact_id)
                              .order_by(col(ScoreEntry.id).desc()).limit(limit))).all())
