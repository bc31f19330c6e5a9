"""Operators: who a bearer token belongs to, and the team."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlmodel import col, select

from ..db import Database
from ..models import Operator, OperatorSession
from ..models.types import utcnow


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def authenticate(db: Database, token: str) -> Operator | None:
    """The active operator whose unexpired session this bearer token is."""
    async with db.read() as s:
        return (
            await s.exec(
                select(Operator)
                .join(OperatorSession, OperatorSession.operator_id == Operator.id)  # type: ignore[arg-type]
                .where(
                    OperatorSession.token_hash == token_hash(token),
                    col(OperatorSession.expires_at) > utcnow(),
                    Operator.is_active == True,  # noqa: E712
                )
            )
        ).first()


async def team(db: Database) -> Sequence[Operator]:
    """Everyone, deactivated accounts too, in the order they joined."""
    async with db.read() as s:
        return (await s.exec(select(Operator).order_by(col(Operator.id)))).all()


async def active(db: Database) -> Sequence[Operator]:
    async with db.read() as s:
        return (await s.exec(select(Operator).where(Operator.is_active == True))).all()  # noqa: E712


async def live_sessions(db: Database, hashes: list[str]) -> dict[str, str]:
    """Session token hash -> the operator's role, for sessions that still let someone in."""
    live: dict[str, str] = {}
    async with db.read() as s:
        for i in range(0, len(hashes), 500):
            rows = (await s.exec(
                select(OperatorSession.token_hash, Operator.role)
                .join(Operator, col(Operator.id) == OperatorSession.operator_id)
                .where(col(OperatorSession.token_hash).in_(hashes[i:i + 500]),
                       col(OperatorSession.expires_at) > utcnow(), Operator.is_active == True)  # noqa: E712
            )).all()
            live.update({token_hash: str(role) for token_hash, role in rows})
    return live
