"""Seed rows straight into a test server's database (contacts with events, past threads)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chat_server.db import Database
from chat_server.models import Contact, Conversation, Event, Message


async def seed_contacts(database_url: str, people: list[tuple[str | None, int, bool]]) -> list[int]:
    """(email, how many /pricing views, expected to match) per contact; returns the ids expected."""
    db = Database(database_url)
    wanted: list[int] = []
    now = datetime.now(UTC)
    try:
        async with db.write() as s:
            for email, views, expected in people:
                contact = Contact(email=email, name=f"Seeded {email or 'anonymous'}", properties={"plan": f"plan {views}"})
                s.add(contact)
                await s.flush()
                assert contact.id is not None
                for k in range(views):
                    s.add(Event(contact_id=contact.id, name="Page viewed", url=f"https://shop.example/pricing?v={k}",
                                occurred_at=now - timedelta(minutes=k)))
                s.add(Event(contact_id=contact.id, name="Page viewed", url="https://shop.example/blog"))
                if expected:
                    wanted.append(contact.id)
    finally:
        await db.dispose()
    return wanted


async def seed_report(database_url: str, day: str, waits: list[tuple[int, int]], operator_id: int) -> None:
    """One conversation per (first inbound minute, first reply minute) on `day` (UTC)."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    db = Database(database_url)
    try:
        async with db.write() as s:
            for asked, answered in waits:
                contact = Contact(name=f"report {day} {asked}")
                s.add(contact)
                await s.flush()
                conv = Conversation(contact_id=contact.id or 0, last_seq=3, last_activity_at=start)
                s.add(conv)
                await s.flush()
                rows = [(asked, "inbound", "contact", None), (asked + 0.5, "inbound", "contact", None),
                        (answered, "outbound", "operator", operator_id)]
                for seq, (minute, direction, author, author_id) in enumerate(rows, 1):
                    s.add(Message(conversation_id=conv.id or 0, seq=seq, channel="widget", direction=direction,
                                  author_type=author, author_id=author_id, text="seeded",
                                  created_at=start + timedelta(minutes=minute)))
    finally:
        await db.dispose()


async def append_messages(database_url: str, conversation_id: int, rows: list[dict[str, object]]) -> None:
    """Messages as another channel's delivery would have stored them (numbered after the thread)."""
    db = Database(database_url)
    try:
        async with db.write() as s:
            conv = await s.get(Conversation, conversation_id)
            assert conv is not None
            for row in rows:
                conv.last_seq += 1
                public = None
                if row.get("kind", "text") == "text":
                    conv.last_public_seq += 1
                    public = conv.last_public_seq
                s.add(Message(conversation_id=conversation_id, seq=conv.last_seq, public_seq=public, **row))  # type: ignore[arg-type]
            s.add(conv)
    finally:
        await db.dispose()
