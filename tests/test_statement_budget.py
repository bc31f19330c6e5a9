"""The regression guard of the hot paths' database work, per message: a statement more than the
budget fails CI. Counts, not timings: every statement sent, transaction control included (one
BEGIN per transaction, which is what group commit shares out). Server CPU per message is
recorded beside it (`record_property`, shown with -rA) as information only: it is a timing.

When a change lowers a count, lower its budget here, so the gain is kept."""

from __future__ import annotations

import asyncio
import time

import pytest

from chat_server.actions.arrivals import Arrivals, do_visitor_arrive
from chat_server.actions.contacts import find_or_create_contact
from chat_server.actions.messages import do_contact_message, do_send_operator_message
from chat_server.actions.operators import do_create_operator
from chat_server.actions.tracking import TrackItem, do_track
from chat_server.models import Channel, IdentityKind, Role
from chat_server.runtime import Runtime
from tests.inprocess import QueryCounter, RecordingBus

pytestmark = pytest.mark.anyio

# Statements per message (or per connect / per event), transaction control included where the
# driver sends it as a statement (SQLite's BEGIN IMMEDIATE; asyncpg begins a transaction its own way).
BUDGET = {
    "sqlite": {
        "a lone visitor message": 4.0,  # BEGIN, lock the conversation, insert, update
        "20 visitor messages sent at once": 0.2,  # the same four, for the whole batch
        "an operator reply": 5.0,  # BEGIN, look for an earlier send with its id, lock, insert, update
        "a new widget": 3.0,  # BEGIN, insert the contact, insert its identity
        "a returning widget": 1.0,  # one read of the identity, contact and conversation
        "20 events tracked at once": 0.35,  # one batch: events, cards, data names, scoring, segments
    },
    "postgresql": {
        "a lone visitor message": 3.0,
        "20 visitor messages sent at once": 0.15,
        "an operator reply": 4.0,
        "a new widget": 2.0,
        "a returning widget": 1.0,
        "20 events tracked at once": 0.3,
    },
}


async def measure(counter: QueryCounter, n: int, work: object) -> tuple[float, float]:
    counter.reset()
    started = time.process_time()
    await work  # type: ignore[misc]
    return len(counter.statements) / n, (time.process_time() - started) * 1e6 / n


async def test_statements_per_message_stay_within_budget(
    counted_rt: tuple[Runtime, RecordingBus, QueryCounter], record_property: pytest.RecordProperty,
) -> None:
    runtime, _bus, counter = counted_rt
    op = await do_create_operator(runtime, "Ivan", "ivan@example.com", "long password", Role.operator)
    contacts = []
    async with runtime.db.write() as s:
        for i in range(20):
            contact, _ = await find_or_create_contact(s, IdentityKind.visitor, f"v{i}", "test")
            contacts.append(contact.id or 0)
    first = [await do_contact_message(runtime, c, Channel.widget, "first", client_msg_id="first") for c in contacts]
    arrivals = Arrivals(runtime)
    returning = await do_visitor_arrive(runtime, arrivals, None, "https://shop.example/", "")
    await do_track(runtime, [TrackItem(contacts[0], "warm_up")])  # the segment and rule caches
    measured: dict[str, tuple[float, float]] = {}

    measured["a lone visitor message"] = await measure(
        counter, 1, do_contact_message(runtime, contacts[0], Channel.widget, "alone", client_msg_id="alone"))
    measured["20 visitor messages sent at once"] = await measure(counter, 20, asyncio.gather(*(
        do_contact_message(runtime, c, Channel.widget, "together", client_msg_id="together") for c in contacts)))
    measured["an operator reply"] = await measure(
        counter, 1, do_send_operator_message(runtime, op, first[0].conversation.id or 0, "reply", client_msg_id="r1"))
    measured["a new widget"] = await measure(
        counter, 1, do_visitor_arrive(runtime, arrivals, None, "https://shop.example/?utm_source=ads", ""))
    measured["a returning widget"] = await measure(
        counter, 1, do_visitor_arrive(runtime, arrivals, returning.visitor_id, "https://shop.example/", ""))
    measured["20 events tracked at once"] = await measure(counter, 20, asyncio.gather(*(
        do_track(runtime, [TrackItem(c, "page_viewed", url="https://shop.example/p")]) for c in contacts)))

    for name, (statements, cpu_us) in measured.items():
        record_property(f"{name}: statements", statements)
        record_property(f"{name}: server CPU µs (information, not checked)", round(cpu_us))
    budget = BUDGET[runtime.db.write_engine.dialect.name]
    over = {name: (statements, budget[name]) for name, (statements, _) in measured.items()
            if statements > budget[name] + 1e-9}
    assert not over, f"statements per message rose above the budget (measured, budget): {over}"
