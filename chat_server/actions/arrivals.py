"""A widget's connect: the visitor's contact card and conversation, cheaply.

Thousands of widgets connect at once after a deploy or on a busy landing page. Each brand-new
visitor needs a contact from the first visit (landing page, referrer, UTM), and a returning one
is looked up and refreshes when it was last seen. On SQLite every write waits for the one write
connection, and every statement costs a hop to the driver's thread, so arrivals that come in
together are handled together (group commit): two statements create a whole batch of contacts
with their visitor identities, one looks up a whole batch of returning visitors, one refreshes
a whole batch of "last seen" times. Should a batch fail, each of its items is tried alone, so
one bad arrival never costs the others theirs.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from ..db import WriteSession
from ..group_commit import GroupCommit
from ..models import Contact, ContactIdentity, Conversation, IdentityKind
from ..models.types import utcnow
from ..runtime import Runtime
from .contacts import LAST_SEEN_RESOLUTION, find_or_create_contact, first_touch
from .membership import dialect_of
from .site import get_site, site_allows
from .webhook_events import emit_contact_created_row

FIRST_VISIT = "first visit"
# Enough to empty a burst of handshakes in a few transactions, few enough that one
# transaction never holds the SQLite writer for long.
MAX_BATCH = 500
# A widget left open without a word (a long page being read) is still someone on the site: each
# process stamps the contacts it holds widget sockets for this often, so "online in the widget"
# (reads/triggers.ONLINE_SECONDS, twice this) holds for as long as a widget is open.
WIDGETS_SEEN_SECONDS = 60.0


@dataclass(frozen=True)
class NewVisitor:
    visitor_id: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Arrival:
    visitor_id: str
    contact_id: int
    conversation: Conversation | None
    token_version: int = 0  # what the visitor's next token is issued under


# contact id, last seen, conversation, the visitor identity's token version
Known = tuple[int, datetime, Conversation | None, int]


class Arrivals:
    """The process's queues of widget arrivals (kept beside the sockets, one per server)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.lookups: GroupCommit[str, Known | None] = GroupCommit(self._lookup_batch, MAX_BATCH)
        # Widgets embedded on a customer's site all ask whether the site allows that origin.
        self.origins: GroupCommit[str, bool] = GroupCommit(self._origins_batch, MAX_BATCH)
        self.new_visitors: GroupCommit[NewVisitor, int] = GroupCommit(self._create_batch, MAX_BATCH)
        self.touches: GroupCommit[int, None] = GroupCommit(self._touch_batch, MAX_BATCH)

    async def _origins_batch(self, origins: list[str]) -> list[bool]:
        site = await get_site(self.rt)
        return [site_allows(site, origin) for origin in origins]

    async def _lookup_batch(self, visitor_ids: list[str]) -> list[Known | None]:
        async with self.rt.db.read() as s:
            rows = (await s.exec(
                select(ContactIdentity.value, ContactIdentity.contact_id, Contact.last_seen_at,  # type: ignore[call-overload]
                       Conversation, ContactIdentity.token_version)
                .join(Contact, col(Contact.id) == ContactIdentity.contact_id)
                .outerjoin(Conversation, col(Conversation.contact_id) == ContactIdentity.contact_id)
                .where(ContactIdentity.kind == IdentityKind.visitor, col(ContactIdentity.value).in_(set(visitor_ids)))
            )).all()
        found: dict[str, Known] = {value: (contact_id, seen, conv, version)
                                   for value, contact_id, seen, conv, version in rows}
        return [found.get(v) for v in visitor_ids]

    async def _create_batch(self, batch: list[NewVisitor]) -> list[int]:
        try:
            return await self._insert(batch)
        except IntegrityError:
            if len(batch) > 1:
                raise  # the group commit tries each alone next
            return [await self._create_one(batch[0])]

    async def _insert(self, batch: list[NewVisitor]) -> list[int]:
        now = utcnow()
        rows = [_contact_row(v.fields, now) for v in batch]

        async def write(s: WriteSession) -> list[int]:
            conn = await s.connection()
            result = await conn.execute(
                insert(Contact).returning(col(Contact.id), sort_by_parameter_order=True), rows)
            ids: list[int] = list(result.scalars().all())  # type: ignore[arg-type]
            for row, contact_id in zip(rows, ids, strict=True):
                emit_contact_created_row(s, contact_id, row)
            await conn.execute(insert(ContactIdentity), [
                {"kind": IdentityKind.visitor, "value": v.visitor_id, "contact_id": contact_id,
                 "linked_reason": FIRST_VISIT, "created_at": now}
                for v, contact_id in zip(batch, ids, strict=True)
            ])
            return ids
        return await self.rt.db.write_batch(write)

    async def _create_one(self, visitor: NewVisitor) -> int:
        # The id is taken (two arrivals under one id): the careful way settles them on one contact.
        async with self.rt.db.write() as s:
            contact, _ = await find_or_create_contact(
                s, IdentityKind.visitor, visitor.visitor_id, FIRST_VISIT, sessions=1, **visitor.fields)
        assert contact.id is not None
        return contact.id

    async def _touch_batch(self, contact_ids: list[int]) -> list[None]:
        async def write(s: WriteSession) -> None:
            await s.exec(update(Contact).where(col(Contact.id).in_(set(contact_ids))).values(last_seen_at=utcnow()))
        await self.rt.db.write_batch(write)
        return [None] * len(contact_ids)


def _contact_row(fields: dict[str, Any], now: Any) -> dict[str, Any]:
    # Core skips the model's Python-side defaults, so every NOT NULL column is given here.
    # One batch's rows all name the same columns, so the insert goes out as one statement.
    return {"properties": {}, "first_utm": {}, "first_landing_page": None, "first_referrer": None, "score": 0,
            "sessions": 1, "first_seen_at": now, "last_seen_at": now, **fields}


async def do_visitor_arrive(
    rt: Runtime, arrivals: Arrivals, visitor_id: str | None, url: str = "", referrer: str = "",
    token_version: int | None = None,
) -> Arrival:
    """A widget connects: its contact (new for an unknown visitor id) and conversation, if any.

    A returning visitor costs a share of a batched read (and, at most every few minutes, a share of a batched
    "last seen" write); a new one a share of a batched insert and no read at all: an id minted
    here is in no other tab yet, so nobody can have started its conversation."""
    if visitor_id is not None:
        known = await arrivals.lookups.submit(visitor_id)
        if known is not None and token_version is not None and known[3] != token_version:
            # A revoked token: whoever holds it starts afresh, under a new id, and reads nothing.
            visitor_id, known = None, None
        if known is not None and visitor_id is not None:
            contact_id, last_seen_at, conv, version = known
            if utcnow() - last_seen_at > LAST_SEEN_RESOLUTION:
                await arrivals.touches.submit(contact_id)
            return Arrival(visitor_id, contact_id, conv, version)
    # A new visitor, or a genuine token whose contact is gone (say the database was restored):
    # another tab racing to create the same id is settled by the identity's unique key in
    # _create_batch, and the widget looks for a conversation such a tab may have started.
    visitor_id = visitor_id or secrets.token_urlsafe(16)
    contact_id = await arrivals.new_visitors.submit(NewVisitor(visitor_id, first_touch(url, referrer)))
    return Arrival(visitor_id, contact_id, None)


async def do_mark_widgets_seen(rt: Runtime, contact_ids: Collection[int], at: datetime | None = None) -> int:
    """Stamp `last_seen_at` on these contacts (their widgets are open in this process), where it
    is older than half the interval. Returns how many were stamped."""
    now = at or utcnow()
    stale = now - timedelta(seconds=WIDGETS_SEEN_SECONDS / 2)
    ids, stamped = sorted(set(contact_ids)), 0
    for start in range(0, len(ids), MAX_BATCH):
        async with rt.db.write() as s:
            due = select(col(Contact.id)).where(col(Contact.id).in_(ids[start:start + MAX_BATCH]),
                                           or_(col(Contact.last_seen_at).is_(None), col(Contact.last_seen_at) < stale))
            if dialect_of(s) == "postgresql":
                # Locked in id order like every batch writer; a contact one is writing now is
                # skipped (that write is news of them anyway).
                due = due.order_by(col(Contact.id)).with_for_update(skip_locked=True)
            db = await s.connection()
            found = list((await db.execute(due)).scalars())
            if found:
                await db.execute(update(Contact).where(col(Contact.id).in_(found)).values(last_seen_at=now))
            stamped += len(found)
    return stamped
