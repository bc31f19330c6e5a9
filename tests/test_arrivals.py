"""A widget's connect: batched first visits, batched "last seen", the kept "anyone online"."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlmodel import select

from chat_server.actions.arrivals import Arrivals, NewVisitor, do_visitor_arrive
from chat_server.actions.contacts import find_contact
from chat_server.actions.errors import ActionError
from chat_server.actions.messages import do_contact_message
from chat_server.actions.operators import (
    OnlineOperators,
    do_create_operator,
    do_set_availability,
    do_update_operator,
)
from chat_server.actions.site import do_update_site
from chat_server.bus import Dispatch, DispatchKind
from chat_server.frames import PresenceFrame
from chat_server.models import Availability, Channel, Contact, ContactIdentity, IdentityKind, Role
from chat_server.models.types import utcnow
from chat_server.runtime import Runtime
from tests.inprocess import QueryCounter, RecordingBus

pytestmark = pytest.mark.anyio


async def test_visitors_arriving_together_each_get_their_own_card(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    arrivals = Arrivals(runtime)
    urls = [f"https://shop.example/p{i}?utm_source=ads&utm_campaign=c{i}" for i in range(30)]
    got = await asyncio.gather(*(do_visitor_arrive(runtime, arrivals, None, url, "https://search.example/")
                                 for url in urls))
    assert len({a.contact_id for a in got}) == 30 and len({a.visitor_id for a in got}) == 30
    async with runtime.db.read() as s:
        for i, (arrival, url) in enumerate(zip(got, urls, strict=True)):
            assert arrival.conversation is None
            contact = await find_contact(s, IdentityKind.visitor, arrival.visitor_id)
            assert contact is not None and contact.id == arrival.contact_id
            assert contact.first_landing_page == url and contact.first_referrer == "https://search.example/"
            assert contact.first_utm == {"source": "ads", "campaign": f"c{i}"}
            assert contact.sessions == 1 and contact.properties == {}


async def test_a_returning_visitor_finds_their_card_and_thread(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    arrivals = Arrivals(runtime)
    first = await do_visitor_arrive(runtime, arrivals, None, "https://shop.example/", "")
    again = await do_visitor_arrive(runtime, arrivals, first.visitor_id)
    assert (again.visitor_id, again.contact_id, again.conversation) == (first.visitor_id, first.contact_id, None)
    stored = await do_contact_message(runtime, first.contact_id, Channel.widget, "hi", client_msg_id="1")
    again = await do_visitor_arrive(runtime, arrivals, first.visitor_id, "https://elsewhere.example/")
    assert again.conversation is not None and again.conversation.id == stored.conversation.id
    async with runtime.db.read() as s:
        contact = await s.get(Contact, first.contact_id)
    assert contact is not None and contact.first_landing_page == "https://shop.example/"  # first touch stays


async def test_last_seen_is_refreshed_for_visitors_back_after_a_while(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    arrivals = Arrivals(runtime)
    visitors = [await do_visitor_arrive(runtime, arrivals, None) for _ in range(3)]
    long_ago = utcnow() - timedelta(hours=1)
    async with runtime.db.write() as s:
        for v in visitors[:2]:
            contact = await s.get(Contact, v.contact_id)
            assert contact is not None
            contact.last_seen_at = long_ago
    await asyncio.gather(*(do_visitor_arrive(runtime, arrivals, v.visitor_id) for v in visitors))
    async with runtime.db.read() as s:
        seen = [(await s.get(Contact, v.contact_id)) for v in visitors]
    assert all(c is not None and c.last_seen_at > long_ago + timedelta(minutes=59) for c in seen)


async def test_a_genuine_token_whose_card_is_gone_gets_it_back(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    arrivals = Arrivals(runtime)
    both = await asyncio.gather(*(do_visitor_arrive(runtime, arrivals, "restored-id", "https://shop.example/")
                                  for _ in range(2)))
    assert both[0].contact_id == both[1].contact_id and both[0].visitor_id == "restored-id"
    async with runtime.db.read() as s:
        rows = (await s.exec(select(ContactIdentity).where(ContactIdentity.value == "restored-id"))).all()
    assert len(rows) == 1


async def test_bad_first_touch_is_refused_and_stores_nothing(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    with pytest.raises(ActionError):
        await do_visitor_arrive(runtime, Arrivals(runtime), None, "https://shop.example/\x00")
    async with runtime.db.read() as s:
        assert (await s.exec(select(Contact))).all() == []


async def test_a_batch_with_a_duplicate_identity_falls_back_to_find_or_create(
    rt: tuple[Runtime, RecordingBus],
) -> None:
    runtime, _ = rt
    arrivals = Arrivals(runtime)
    ids = await asyncio.gather(arrivals.new_visitors.submit(NewVisitor("same", {})),
                               arrivals.new_visitors.submit(NewVisitor("other", {})),
                               arrivals.new_visitors.submit(NewVisitor("same", {})))
    assert ids[0] == ids[2] != ids[1]
    async with runtime.db.read() as s:
        assert len((await s.exec(select(Contact))).all()) == 2


async def test_presence_news_says_what_it_is(rt: tuple[Runtime, RecordingBus]) -> None:
    """The online cache picks presence out by the dispatch's kind, never by reading the frame."""
    runtime, bus = rt
    op = await do_create_operator(runtime, "Olga", "olga@example.com", "long password", Role.operator)
    await do_set_availability(runtime, op, Availability.online)
    assert [(d.kind, json.loads(d.frame)["type"]) for d in bus.published] == [
        (DispatchKind.presence, "presence"), (DispatchKind.presence, "presence")]
    online = OnlineOperators()
    assert await online.get(runtime) is True
    await do_set_availability(runtime, op, Availability.away)
    news = bus.published[-1]
    # The same frame under another kind is not presence news: the kept answer stays.
    online.dispatch([Dispatch(DispatchKind.typing, news.audience, news.frame)])
    assert await online.get(runtime) is True
    online.dispatch([Dispatch.from_json(json.loads(json.dumps(news.to_json())))])  # as Redis brings it
    assert await online.get(runtime) is False


async def test_online_answer_is_kept_until_presence_news(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    online = OnlineOperators()
    op = await do_create_operator(runtime, "Olga", "olga@example.com", "long password", Role.operator)
    assert await online.get(runtime) is False
    await do_set_availability(runtime, op, Availability.online)
    assert await online.get(runtime) is False  # no news has reached this process yet
    online.dispatch(bus.published)
    assert await online.get(runtime) is True

    bus.published.clear()
    admin = await do_create_operator(runtime, "Anna", "anna@example.com", "long password", Role.admin)
    await do_update_operator(runtime, admin, op.id or 0, is_active=False)
    # Deactivating the only online operator is presence news too, for widgets and for the kept answer.
    assert [d.frame for d in bus.published if d.audience.all_visitors] == [
        PresenceFrame(operators_online=False).model_dump_json()]
    online.dispatch(bus.published)
    assert await online.get(runtime) is False
    online.resync()
    assert await online.get(runtime) is False


async def test_one_read_serves_every_widget_connecting_meanwhile(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    online = OnlineOperators()
    counter = QueryCounter(runtime.db)
    assert await asyncio.gather(*(online.get(runtime) for _ in range(20))) == [False] * 20
    assert len([s for s in counter.statements if "operator" in s.lower()]) == 1


async def test_embedding_origins_checked_together_cost_one_read(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    admin = await do_create_operator(runtime, "Anna", "anna@example.com", "long password", Role.admin)
    await do_update_site(runtime, admin, {"allowed_origins": ["https://shop.example"]})
    arrivals = Arrivals(runtime)
    counter = QueryCounter(runtime.db)
    origins = ["https://shop.example", "https://shop.example/", "https://evil.example", ""] * 5
    assert await asyncio.gather(*(arrivals.origins.submit(o) for o in origins)) == [True, True, False, False] * 5
    assert len([s for s in counter.statements if "site_settings" in s.lower()]) == 1
    await do_update_site(runtime, admin, {"allowed_origins": ["*"]})
    assert await arrivals.origins.submit("https://evil.example") is True  # never a stale answer
