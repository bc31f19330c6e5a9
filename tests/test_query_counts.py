"""The hot path costs a known number of queries; a regression is a test failure."""

from __future__ import annotations

import pytest

from chat_server.actions.arrivals import Arrivals, do_visitor_arrive
from chat_server.actions.contacts import find_or_create_contact
from chat_server.actions.messages import do_contact_message, do_send_operator_message
from chat_server.actions.operators import OnlineOperators, do_create_operator
from chat_server.actions.proactive import do_send_proactive
from chat_server.models import Channel, IdentityKind, Role
from chat_server.reads.contacts import proactive
from chat_server.runtime import Runtime
from tests.inprocess import QueryCounter, RecordingBus

pytestmark = pytest.mark.anyio


def statements(counter: QueryCounter) -> list[str]:
    # Transaction control differs by database (BEGIN IMMEDIATE on SQLite); count the work.
    return [s for s in counter.statements if not s.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))]


async def test_visitor_message_and_operator_reply_query_counts(counted_rt: tuple[Runtime, RecordingBus, QueryCounter]) -> None:
    runtime, bus, counter = counted_rt
    op = await do_create_operator(runtime, "Ivan", "ivan@example.com", "long password", Role.operator)
    async with runtime.db.write() as s:
        contact, _ = await find_or_create_contact(s, IdentityKind.visitor, "v", "test")
    assert contact.id is not None
    first = await do_contact_message(runtime, contact.id, Channel.widget, "first", client_msg_id="1")

    counter.reset()
    await do_contact_message(runtime, contact.id, Channel.widget, "second", client_msg_id="2")
    # lock the conversation, insert the message, update the conversation
    assert len(statements(counter)) == 3, statements(counter)

    counter.reset()
    bus.published.clear()
    await do_send_operator_message(runtime, op, first.conversation.id or 0, "reply", client_msg_id="r1")
    # look for an earlier send with this id, lock, insert, update
    assert len(statements(counter)) == 4, statements(counter)
    # One frame per audience, serialised once, whatever the number of sockets.
    assert len(bus.published) == 3


async def test_widget_connect_query_counts(counted_rt: tuple[Runtime, RecordingBus, QueryCounter]) -> None:
    runtime, _bus, counter = counted_rt
    arrivals, online = Arrivals(runtime), OnlineOperators()
    await online.get(runtime)  # read once per process, then kept until presence news

    counter.reset()
    new = await do_visitor_arrive(runtime, arrivals, None, "https://shop.example/?utm_source=ads", "")
    await online.get(runtime)
    # insert the contact card, insert its visitor identity; no read at all
    assert len(statements(counter)) == 2, statements(counter)

    counter.reset()
    await do_visitor_arrive(runtime, arrivals, new.visitor_id, "https://shop.example/", "")
    await online.get(runtime)
    # the identity with its contact's last visit and conversation, in one read
    assert len(statements(counter)) == 1, statements(counter)


async def test_proactive_list_costs_the_same_for_any_number_of_messages(
    counted_rt: tuple[Runtime, RecordingBus, QueryCounter]
) -> None:
    runtime, _bus, counter = counted_rt
    async with runtime.db.write() as s:
        contact, _ = await find_or_create_contact(s, IdentityKind.visitor, "v-bot", "test")
    assert contact.id is not None
    for i in range(5):
        await do_send_proactive(runtime, contact.id, f"offer {i}")
        if i % 2 == 0:
            await do_contact_message(runtime, contact.id, Channel.widget, f"answer {i}", client_msg_id=str(i))

    counter.reset()
    sent = await proactive(runtime.db, contact.id)
    # the contact, then every automatic message with the contact's next message after it
    assert len(statements(counter)) == 2, statements(counter)
    assert sent is not None
    assert [(p.message.text, p.reply_text) for p in sent] == [
        ("offer 0", "answer 0"), ("offer 1", "answer 2"), ("offer 2", "answer 2"), ("offer 3", "answer 4"),
        ("offer 4", "answer 4"),
    ]
