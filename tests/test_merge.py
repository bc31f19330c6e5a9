"""Merging contacts: identities, events and messages move; threads interleave by time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select

from chat_server.actions.contacts import do_track_event, find_or_create_contact
from chat_server.actions.errors import Conflict
from chat_server.actions.merge import do_merge_contacts
from chat_server.actions.messages import do_contact_message, do_operator_read, do_send_operator_message
from chat_server.actions.operators import do_create_operator
from chat_server.frames import ResetFrame
from chat_server.models import (
    Channel,
    Contact,
    ContactIdentity,
    ContactMerge,
    Conversation,
    Event,
    IdentityKind,
    Message,
    Operator,
    Role,
)
from chat_server.models.types import utcnow
from chat_server.runtime import Runtime
from tests.inprocess import RecordingBus

pytestmark = pytest.mark.anyio


async def new_contact(rt: Runtime, kind: IdentityKind, value: str, **fields: object) -> int:
    async with rt.db.write() as s:
        contact, created = await find_or_create_contact(s, kind, value, "test", **fields)
    assert created and contact.id is not None
    return contact.id


async def backdate(rt: Runtime, message_id: int, minutes: int) -> None:
    async with rt.db.write() as s:
        m = await s.get(Message, message_id)
        assert m is not None
        m.created_at = utcnow() - timedelta(minutes=minutes)
        s.add(m)


async def operator(rt: Runtime) -> Operator:
    return await do_create_operator(rt, "Olga", "olga@example.com", "long password", Role.operator)


async def test_merge_interleaves_threads_by_time_and_moves_everything(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, bus = rt
    op = await operator(runtime)
    known = await new_contact(runtime, IdentityKind.email, "ann@example.com", name="Ann", email="ann@example.com")
    anon = await new_contact(runtime, IdentityKind.visitor, "v-1", phone="+7 900 000 00 00",
                             properties={"plan": "free", "city": "Kazan"})
    async with runtime.db.write() as s:
        survivor = await s.get(Contact, known)
        assert survivor is not None
        survivor.properties = {"plan": "pro"}
    # Known contact: messages 60 and 20 minutes ago; visitor: 40 and 10 minutes ago.
    k1 = await do_contact_message(runtime, known, Channel.email, "k1 email", external_id="<k1@mail>")
    a1 = await do_contact_message(runtime, anon, Channel.widget, "a1 widget", client_msg_id="a1")
    k2 = await do_send_operator_message(runtime, op, k1.conversation.id or 0, "k2 reply", channel="email")
    a2 = await do_contact_message(runtime, anon, Channel.widget, "a2 widget", client_msg_id="a2")
    for stored, minutes in ((k1, 60), (a1, 40), (k2, 20), (a2, 10)):
        await backdate(runtime, stored.message.id or 0, minutes)
    await do_operator_read(runtime, op, k1.conversation.id or 0, 2)  # the known thread was read
    await do_track_event(runtime, anon, "page_viewed", {"title": "Pricing"}, "https://shop/pricing")
    bus.published.clear()

    record = await do_merge_contacts(runtime, known, anon, "identified by email",
                                     identity=("email", "ann@example.com"), operator=op)

    async with runtime.db.read() as s:
        convs = (await s.exec(select(Conversation).where(col(Conversation.contact_id).in_([known, anon])))).all()
        assert len(convs) == 1 and convs[0].contact_id == known
        conv = convs[0]
        thread = (await s.exec(select(Message).where(Message.conversation_id == conv.id).order_by(col(Message.seq)))).all()
        identities = (await s.exec(select(ContactIdentity).where(ContactIdentity.contact_id == known))).all()
        events = (await s.exec(select(Event).where(Event.contact_id == known))).all()
        survivor = await s.get(Contact, known)
        absorbed = await s.get(Contact, anon)
        merges = (await s.exec(select(ContactMerge))).all()
    assert [m.text for m in thread[:4]] == ["k1 email", "a1 widget", "k2 reply", "a2 widget"]
    assert [m.seq for m in thread] == list(range(1, len(thread) + 1))  # gap-free after renumbering
    assert thread[-1].kind == "system" and "identified by email" in thread[-1].text
    assert [m.public_seq for m in thread[:4]] == [1, 2, 3, 4]
    assert conv.last_seq == len(thread) and conv.last_public_seq == 4 and conv.epoch == 2
    # Only the survivor's first message was read before and precedes everything unread.
    assert conv.operator_read_seq == 1
    assert {(i.kind, i.value) for i in identities} == {("email", "ann@example.com"), ("visitor", "v-1")}
    assert [e.name for e in events] == ["page_viewed"]
    assert survivor is not None and absorbed is not None
    assert survivor.properties == {"plan": "pro", "city": "Kazan"}  # survivor wins, the other fills gaps
    assert survivor.phone == "+7 900 000 00 00" and survivor.name == "Ann"
    assert absorbed.merged_into_id == known
    assert len(merges) == 1 and merges[0].id == record.id
    assert merges[0].identity_kind == "email" and merges[0].merged_snapshot["phone"] == "+7 900 000 00 00"
    # Clients learn it: the absorbed contact's widgets are re-keyed, everyone holding the thread resets.
    assert any(d.rekey == (anon, known) for d in bus.published)
    resets = [d for d in bus.published if d.reset]
    assert {d.audience.contact_ids for d in resets} >= {(known,)}
    assert all(ResetFrame.model_validate_json(d.frame).epoch == 2 for d in resets)


async def test_contacts_with_different_user_ids_are_never_merged(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    a = await new_contact(runtime, IdentityKind.user_id, "site-user-1")
    b = await new_contact(runtime, IdentityKind.user_id, "site-user-2")
    await do_contact_message(runtime, b, Channel.widget, "hello", client_msg_id="x")
    with pytest.raises(Conflict) as refused:
        await do_merge_contacts(runtime, a, b, "operator thought so")
    assert refused.value.code == "different_users"
    async with runtime.db.read() as s:
        assert (await s.get(Contact, b)).merged_into_id is None  # type: ignore[union-attr]
        assert len((await s.exec(select(ContactIdentity).where(ContactIdentity.contact_id == b))).all()) == 1


async def test_merge_without_a_survivor_thread_moves_the_conversation(rt: tuple[Runtime, RecordingBus]) -> None:
    runtime, _ = rt
    known = await new_contact(runtime, IdentityKind.user_id, "u-9")
    anon = await new_contact(runtime, IdentityKind.visitor, "v-9")
    stored = await do_contact_message(runtime, anon, Channel.widget, "hi", client_msg_id="c")
    await do_merge_contacts(runtime, known, anon, "identify")
    async with runtime.db.read() as s:
        conv = await s.get(Conversation, stored.conversation.id)
        assert conv is not None and conv.contact_id == known and conv.epoch == 1
        messages = (await s.exec(select(Message).where(Message.conversation_id == conv.id).order_by(col(Message.seq)))).all()
    assert [m.seq for m in messages] == [1, 2] and messages[0].text == "hi"
    # A merged contact can't be merged again.
    with pytest.raises(Conflict):
        await do_merge_contacts(runtime, known, anon, "again")
