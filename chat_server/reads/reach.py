"""Where a contact can be reached by an automatic message, and the best place to try.

Whether a contact has a widget open is not in the database: each process's socket hub knows
its own sockets (realtime/hub.py `visitors`). The caller says it (`online_widget`), so this
stays a read of stored facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..db import Database
from ..models import Contact, ContactIdentity, IdentityKind, Unsubscribe

MESSENGERS = ("telegram", "vk")


@dataclass(frozen=True)
class Reach:
    online_widget: bool
    telegram: bool  # linked and not blocked
    vk: bool
    email: str | None
    unsubscribed: frozenset[str]
    blocked: frozenset[str] = frozenset()


async def _same_person(s: AsyncSession, contact_id: int) -> list[int]:
    """The contact and the cards merged into it (their unsubscriptions still hold)."""
    merged = (await s.exec(select(Contact.id).where(Contact.merged_into_id == contact_id))).all()
    return [contact_id, *(m for m in merged if m is not None)]


async def reach_of(s: AsyncSession, contact_id: int, *, online_widget: bool = False) -> Reach:
    contact = await s.get(Contact, contact_id)
    if contact is None:
        return Reach(False, False, False, None, frozenset())
    identities = (await s.exec(
        select(ContactIdentity).where(ContactIdentity.contact_id == contact_id,
                                      col(ContactIdentity.kind).in_([*MESSENGERS, IdentityKind.email.value]))
        .order_by(col(ContactIdentity.id).desc()))).all()
    blocked = frozenset(str(i.kind) for i in identities if i.state == "blocked")
    linked = {str(i.kind) for i in identities if i.state != "blocked"}
    email = next((i.value for i in identities if str(i.kind) == "email" and i.state != "blocked"), None)
    if email is None and "email" not in blocked:
        email = contact.email
    unsubscribed = frozenset((await s.exec(select(Unsubscribe.channel).where(
        col(Unsubscribe.contact_id).in_(await _same_person(s, contact_id))))).all())
    return Reach(online_widget, "telegram" in linked, "vk" in linked, email, unsubscribed, blocked)


def reachable(reach: Reach, channel: str) -> bool:
    if channel in reach.unsubscribed or channel in reach.blocked:
        return False
    if channel == "widget":
        return True  # stored in the thread and shown when the widget next opens
    if channel == "email":
        return reach.email is not None
    return bool(getattr(reach, channel, False)) if channel in MESSENGERS else False


def best_channel(reach: Reach) -> str | None:
    """Online in the widget → a linked messenger → email; None when nothing reaches them."""
    if reach.online_widget and reachable(reach, "widget"):
        return "widget"
    for channel in (*MESSENGERS, "email"):
        if reachable(reach, channel):
            return channel
    return None


async def unsubscriptions(db: Database, contact_id: int) -> list[tuple[str, datetime]]:
    """(channel, when) the contact unsubscribed, for the contact card."""
    async with db.read() as s:
        rows = (await s.exec(select(Unsubscribe).where(
            col(Unsubscribe.contact_id).in_(await _same_person(s, contact_id))).order_by(col(Unsubscribe.created_at)))).all()
    return [(r.channel, r.created_at) for r in rows]
