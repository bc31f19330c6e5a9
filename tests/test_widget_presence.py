"""A widget left open is someone on the site: triggers' "online in the widget" (and so the best
available channel) holds for as long as it is open, not two minutes after its last event."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from chat_server.models import Contact, ContactIdentity
from chat_server.models.types import utcnow
from chat_server.reads.triggers import load_facts
from chat_server.runtime import Runtime
from tests.appserver import AppServer
from tests.channel_helpers import eventually
from tests.harness import metric, visitor
from tests.inprocess import make_runtime

pytestmark = pytest.mark.anyio


async def contact_of(rt: Runtime, visitor_id: str) -> int:
    async with rt.db.read() as s:
        found = (await s.exec(select(ContactIdentity.contact_id).where(ContactIdentity.value == visitor_id))).one()
    return found


async def online(rt: Runtime, contact_ids: list[int]) -> dict[int, bool]:
    async with rt.db.read() as s:
        facts = await load_facts(s, contact_ids, set(), utcnow())
    return {cid: f.online for cid, f in facts.items()}


async def test_an_open_widget_keeps_its_contact_online_and_a_closed_one_does_not(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("chat_server.realtime.sessions.WIDGETS_SEEN_SECONDS", 0.2)  # a minute in production
    async with AppServer(tmp_path, db_url) as app:
        rt, _ = await make_runtime(app.settings.database_url)
        try:
            reading, reading_welcome = await visitor(app)
            left, left_welcome = await visitor(app)
            ids = [await contact_of(rt, reading_welcome["visitor_id"]), await contact_of(rt, left_welcome["visitor_id"])]
            await left.close()

            async def one_widget_open() -> bool:
                return await metric(app, "chat_open_sockets", kind="visitor") == 1
            await eventually(one_widget_open, what="the closed widget gone from the server")
            # Both went quiet ten minutes ago: one is still reading the page, one left.
            async with rt.db.write() as s:
                await s.exec(update(Contact).where(col(Contact.id).in_(ids))
                             .values(last_seen_at=utcnow() - timedelta(minutes=10)))

            async def stamped() -> bool:
                return (await online(rt, ids))[ids[0]]
            await eventually(stamped, what="the open widget's contact seen again")
            assert await online(rt, ids) == {ids[0]: True, ids[1]: False}
            await reading.close()
        finally:
            await rt.db.dispose()
