"""What the inbox list shows of each conversation (preview, unread count, waiting time), what
it costs, and operators' availability following their inbox (online on login, away after)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from chat_server.actions.contacts import find_or_create_contact
from chat_server.actions.conversations import do_assign, do_set_status
from chat_server.actions.messages import do_contact_message, do_operator_read, do_send_operator_message
from chat_server.actions.operators import do_create_operator
from chat_server.actions.presence import (
    do_arrive_after_login,
    do_away_idle_operators,
    do_mark_inbox_seen,
    do_set_availability_on_login,
)
from chat_server.db import Database
from chat_server.frames import PREVIEW_LENGTH
from chat_server.models import Availability, Channel, Contact, Conversation, IdentityKind, Operator, Role, Status
from chat_server.models.types import utcnow
from chat_server.reads.conversation_list import conversation_views, list_summaries, preview_text, unread_per_tab
from chat_server.runtime import Runtime
from tests.harness import ChatServer, api, create_operator, login, operator, visitor
from tests.inprocess import QueryCounter, RecordingBus

pytestmark = pytest.mark.anyio


async def new_contact(runtime: Runtime, key: str) -> int:
    async with runtime.db.write() as s:
        contact, _ = await find_or_create_contact(s, IdentityKind.visitor, key, "test")
    assert contact.id is not None
    return contact.id


def frames_of(bus: RecordingBus, kind: str) -> list[dict]:  # type: ignore[type-arg]
    found = [json.loads(d.frame) for d in bus.published]
    return [f for f in found if f["type"] == kind]


def test_preview_is_the_first_line_cut_short() -> None:
    assert preview_text("\n\n  Hello there  \nsecond line") == "Hello there"
    long = "word " * 100
    cut = preview_text(long)
    assert len(cut) == PREVIEW_LENGTH and cut.endswith("…")
    assert preview_text("") == ""


async def test_summary_follows_the_thread(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    op = await do_create_operator(runtime, "Ivan", "ivan@example.com", "long password", Role.operator)
    contact = await new_contact(runtime, "v1")
    first = await do_contact_message(runtime, contact, Channel.widget, "Where is my order?\nIt was #42", client_msg_id="1")
    await do_contact_message(runtime, contact, Channel.widget, "Hello?", client_msg_id="2")
    conv_id = first.conversation.id
    assert conv_id is not None

    async def summary():  # type: ignore[no-untyped-def]
        async with runtime.db.read() as s:
            return (await list_summaries(s, [conv_id]))[conv_id]

    got = await summary()
    assert got.unread_count == 2
    assert got.waiting_since == first.message.created_at  # since the first unanswered message
    assert got.last_message is not None and got.last_message.text == "Hello?"
    assert got.last_message.author.type == "contact" and got.last_message.direction == "inbound"

    # A private note is the last word shown, but answers nobody.
    await do_send_operator_message(runtime, op, conv_id, "Checking the warehouse", client_msg_id="n", note=True)
    got = await summary()
    assert got.last_message is not None and got.last_message.kind == "note"
    assert got.last_message.author.id == op.id and got.waiting_since == first.message.created_at

    # A system line (assignment) never becomes the preview.
    bus.published.clear()
    await do_assign(runtime, op, conv_id, op.id)
    got = await summary()
    assert got.last_message is not None and got.last_message.text == "Checking the warehouse"
    # The conversation.updated frame carries the same summary.
    updated = frames_of(bus, "conversation.updated")[0]["conversation"]
    assert updated["unread_count"] == 2 and updated["last_message"]["kind"] == "note"
    assert updated["waiting_since"] is not None

    # A reply answers (and replying has read the thread).
    await do_send_operator_message(runtime, op, conv_id, "It ships today", client_msg_id="r")
    got = await summary()
    assert got.waiting_since is None and got.unread_count == 0
    assert got.last_message is not None and got.last_message.direction == "outbound"
    assert got.last_message.author.name == "Ivan"

    # The contact writes again: waiting since that message, unread until read.
    again = await do_contact_message(runtime, contact, Channel.widget, "Thanks!", client_msg_id="3",
                                     attachments=[{"url": "/x", "name": "a.png", "content_type": "image/png", "size": 1}])
    got = await summary()
    assert got.last_message is not None and got.last_message.attachments == 1
    await do_contact_message(runtime, contact, Channel.widget, "Bye", client_msg_id="4")
    got = await summary()
    assert got.unread_count == 2 and got.waiting_since == again.message.created_at
    await do_operator_read(runtime, op, conv_id, again.message.seq)
    got = await summary()
    assert got.unread_count == 1 and got.last_message is not None and got.last_message.text == "Bye"


async def test_a_new_conversation_is_announced_with_its_summary(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    contact = await new_contact(runtime, "v2")
    stored = await do_contact_message(runtime, contact, Channel.widget, "First words", client_msg_id="1")
    view = frames_of(bus, "conversation.updated")[0]["conversation"]
    assert view["last_message"]["text"] == "First words" and view["unread_count"] == 1
    assert view["last_seq"] == stored.message.seq  # the view describes the thread up to here

    # Reopened by a message: announced again, with the new count.
    op = await do_create_operator(runtime, "Ivan", "ivan@example.com", "long password", Role.operator)
    await do_set_status(runtime, op, stored.conversation.id or 0, Status.closed)
    bus.published.clear()
    await do_contact_message(runtime, contact, Channel.widget, "Back again", client_msg_id="2")
    view = frames_of(bus, "conversation.updated")[0]["conversation"]
    assert view["status"] == "open" and view["unread_count"] == 2 and view["last_message"]["text"] == "Back again"


async def test_a_page_costs_the_same_few_statements_whatever_its_length(
        counted_rt: tuple[Runtime, RecordingBus, QueryCounter]) -> None:
    runtime, _bus, counter = counted_rt
    costs = []
    for n in (2, 12):
        for i in range(n):
            contact = await new_contact(runtime, f"page-{n}-{i}")
            for k in range(3):
                await do_contact_message(runtime, contact, Channel.widget, f"m{k}", client_msg_id=f"{k}")
        async with runtime.db.read() as s:
            rows = (await s.exec(select(Conversation, Contact).join(Contact, Contact.id == Conversation.contact_id))).all()  # type: ignore[arg-type]
            counter.reset()
            views = await conversation_views(s, rows)
            costs.append(counter.count)
        assert all(v.unread_count == 3 and v.last_message is not None for v in views)
    assert costs == [1, 1], costs  # one statement for the whole page


async def test_unread_per_tab(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _bus = rt
    me = await do_create_operator(runtime, "Ivan", "ivan@example.com", "long password", Role.operator)
    other = await do_create_operator(runtime, "Nina", "nina@example.com", "long password", Role.operator)
    convs = []
    for i in range(4):
        stored = await do_contact_message(runtime, await new_contact(runtime, f"t{i}"), Channel.widget, "hi", client_msg_id="1")
        convs.append(stored.conversation.id or 0)
    await do_assign(runtime, me, convs[0], me.id)
    await do_assign(runtime, me, convs[1], other.id)
    await do_operator_read(runtime, me, convs[2], 1)  # read: not counted
    await do_set_status(runtime, me, convs[3], Status.closed)  # closed: not in the open tabs
    async with runtime.db.read() as s:
        assert await unread_per_tab(s, me.id or 0) == {"open": 2, "mine": 1, "unassigned": 0}


async def test_logging_in_comes_online_unless_the_operator_keeps_their_last_state(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    op = await do_create_operator(runtime, "Ivan", "ivan@example.com", "long password", Role.operator)
    assert op.availability == Availability.away
    await do_arrive_after_login(runtime, op)
    assert op.availability == Availability.online
    widget_news = [d for d in bus.published if d.audience.all_visitors]
    assert [json.loads(d.frame)["operators_online"] for d in widget_news] == [True]

    keeper = await do_create_operator(runtime, "Nina", "nina@example.com", "long password", Role.operator)
    await do_set_availability_on_login(runtime, keeper, "last")
    bus.published.clear()
    await do_arrive_after_login(runtime, keeper)
    assert keeper.availability == Availability.away and bus.published == []
    async with runtime.db.read() as s:
        stored = (await s.exec(select(Operator).where(Operator.id == keeper.id))).one()
    assert stored.availability_on_login == "last" and stored.availability == Availability.away

    # Sales accounts never answer: logging in leaves them away.
    sales = await do_create_operator(runtime, "Sam", "sam@example.com", "long password", Role.sales)
    await do_arrive_after_login(runtime, sales)
    assert sales.availability == Availability.away and bus.published == []


async def test_online_operators_without_an_open_inbox_go_away(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    runtime.settings.away_after_minutes = 10
    gone = await do_create_operator(runtime, "Ivan", "ivan@example.com", "long password", Role.operator)
    stays = await do_create_operator(runtime, "Nina", "nina@example.com", "long password", Role.operator)
    for op in (gone, stays):
        await do_arrive_after_login(runtime, op)
    now = utcnow()
    await do_mark_inbox_seen(runtime, [gone.id or 0], at=now - timedelta(minutes=11))
    await do_mark_inbox_seen(runtime, [stays.id or 0], at=now - timedelta(minutes=9))
    bus.published.clear()

    assert await do_away_idle_operators(runtime, now) == [gone.id]
    staff = [json.loads(d.frame) for d in bus.published if d.audience.roles]
    assert staff == [{"type": "presence", "operator_id": gone.id, "availability": "away", "operators_online": True}]
    assert not [d for d in bus.published if d.audience.all_visitors]  # Nina still answers

    # Later, Nina's inbox has been closed too long as well: now the widgets hear nobody is there.
    bus.published.clear()
    assert await do_away_idle_operators(runtime, now + timedelta(minutes=2)) == [stays.id]
    public = [json.loads(d.frame) for d in bus.published if d.audience.all_visitors]
    assert [f["operators_online"] for f in public] == [False]
    assert await do_away_idle_operators(runtime, now + timedelta(minutes=3)) == []  # nothing twice


async def test_the_server_sends_away_an_operator_whose_inbox_stays_closed(tmp_path: Path) -> None:
    """The lifespan's sweep, for real: a tiny away period (3 s). While the inbox is open the
    heartbeat keeps her online; once it closes, the widgets hear that nobody is there."""
    server = ChatServer(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", CHAT_AWAY_AFTER_MINUTES="0.05")
    server.start()
    db = Database(server.database_url)
    try:
        admin = await login(server)
        email = f"pia-{uuid.uuid4().hex[:6]}@example.com"
        pia = await create_operator(server, admin, email, name="Pia", availability_on_login="online")
        v, welcome = await visitor(server)
        assert welcome["operators_online"] is True  # she logged in: online
        inbox = await operator(server, pia)

        async def seen_at() -> datetime:
            async with db.read() as s:
                stamp = (await s.exec(select(Operator.inbox_seen_at).where(Operator.email == email))).one()
            assert stamp is not None
            return stamp

        # Wait until the heartbeat has stamped her open inbox for longer than the away period.
        first = await seen_at()
        for _ in range(200):
            if await seen_at() - first > timedelta(seconds=6):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the open inbox was not stamped")
        assert not [f for f in await v.settled() if f["type"] == "presence"]  # still online all along
        async with api(server, admin) as http:
            team = (await http.get("/operators")).json()["items"]
        assert next(o for o in team if o["email"] == email)["availability"] == "online"

        closed_at = asyncio.get_running_loop().time()
        await inbox.close()
        presence = await v.expect("presence", timeout=20)
        assert presence["operators_online"] is False
        assert asyncio.get_running_loop().time() - closed_at >= 2.5  # not before the away period
        async with api(server, admin) as http:
            team = (await http.get("/operators")).json()["items"]
        assert next(o for o in team if o["email"] == email)["availability"] == "away"
        await v.close()
    finally:
        await db.dispose()
        server.stop()
