"""Reading segments: the list with member counts, a definition's count and contacts (from its
SQL form, the same definition the live check runs), a contact's segments, the data names."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ..behaviour.segments import Group, segment_clause
from ..db import Database
from ..models import Contact, DataName, Segment, SegmentMembership
from ..models.types import utcnow


async def list_segments(s: AsyncSession) -> list[tuple[Segment, int]]:
    """Every segment with its member count (the stored members, kept live)."""
    segments = (await s.exec(select(Segment).order_by(col(Segment.name)))).all()
    counts = dict((await s.exec(select(SegmentMembership.segment_id, func.count())
                                .group_by(col(SegmentMembership.segment_id)))).all())
    return [(seg, counts.get(seg.id or 0, 0)) for seg in segments]


async def get_segment(s: AsyncSession, segment_id: int) -> Segment | None:
    return await s.get(Segment, segment_id)


async def definition(db: Database, segment_id: int) -> Group | None:
    """A saved segment's definition, or None when there is no such segment."""
    async with db.read() as s:
        segment = await s.get(Segment, segment_id)
    return None if segment is None else Group.model_validate(segment.definition)


def contacts_in(definition: Group, dialect: str, now: datetime | None = None) -> SelectOfScalar[Contact]:
    """The contacts a definition selects, as a query (not merged-away cards)."""
    return select(Contact).where(col(Contact.merged_into_id).is_(None), segment_clause(definition, dialect, now or utcnow()))


async def count_matching(s: AsyncSession, definition: Group, dialect: str, now: datetime | None = None) -> int:
    query = select(func.count()).select_from(Contact).where(
        col(Contact.merged_into_id).is_(None), segment_clause(definition, dialect, now or utcnow()))
    return int((await s.exec(query)).one())


async def contact_segments(s: AsyncSession, contact_id: int) -> list[tuple[int, str, datetime]]:
    rows = (await s.exec(
        select(Segment.id, Segment.name, SegmentMembership.entered_at)
        .join(SegmentMembership, col(SegmentMembership.segment_id) == col(Segment.id))
        .where(SegmentMembership.contact_id == contact_id).order_by(col(Segment.name))
    )).all()
    return [(r[0] or 0, r[1], r[2]) for r in rows]


async def data_names(s: AsyncSession) -> list[DataName]:
    return list((await s.exec(select(DataName).order_by(col(DataName.kind), col(DataName.name)))).all())


async def members_page(db: Database, definition: Group, before_id: int | None, limit: int) -> list[Contact]:
    """The definition's contacts, newest first, `limit + 1` of them so the caller sees whether more follow."""
    query = contacts_in(definition, db.read_engine.dialect.name)
    if before_id is not None:
        query = query.where(col(Contact.id) < before_id)
    async with db.read() as s:
        return list((await s.exec(query.order_by(col(Contact.id).desc()).limit(limit + 1))).all())


async def members_export(db: Database, definition: Group, at_most: int) -> list[Contact]:
    """The definition's contacts, oldest first, at most `at_most + 1` of them."""
    query = contacts_in(definition, db.read_engine.dialect.name)
    async with db.read() as s:
        return list((await s.exec(query.order_by(col(Contact.id)).limit(at_most + 1))).all())
