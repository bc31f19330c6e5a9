"""do_send_proactive: what the trigger engine calls to write to a visitor first."""

from __future__ import annotations

import json

import pytest

from chat_server.actions.contacts import find_or_create_contact
from chat_server.actions.errors import ActionError
from chat_server.actions.proactive import do_send_proactive
from chat_server.models import IdentityKind
from chat_server.runtime import Runtime
from tests.harness import check_frame
from tests.inprocess import RecordingBus

pytestmark = pytest.mark.anyio


async def test_proactive_message_opens_a_conversation_reaches_the_visitor_once(
    rt: tuple[Runtime, RecordingBus]
) -> None:
    runtime, bus = rt
    async with runtime.db.write() as s:
        contact, _ = await find_or_create_contact(s, IdentityKind.visitor, "v-proactive", "first visit")
    assert contact.id is not None
    stored = await do_send_proactive(runtime, contact.id, "Можем помочь с тарифом? 🙂", display="card",
                                     author_name="Acme bot", client_msg_id="trigger-7:contact-1")
    m = stored.message
    shape = (m.kind, m.author_type, m.direction, m.channel, m.display)
    assert shape == ("automatic", "bot", "outbound", "widget", "card")
    assert m.seq == 1 and m.public_seq == 1
    to_visitor = [d for d in bus.published if d.audience.contact_ids == (contact.id,)]
    assert len(to_visitor) == 1
    frame = check_frame(to_visitor[0].frame)
    assert frame["message"]["display"] == "card" and frame["message"]["author"] == {
        "type": "bot", "id": None, "name": "Acme bot"}
    staff = [json.loads(d.frame)["type"] for d in bus.published if d.audience.roles]
    assert staff == ["conversation.updated", "message"]

    published = len(bus.published)
    again = await do_send_proactive(runtime, contact.id, "Можем помочь с тарифом? 🙂", display="card",
                                    client_msg_id="trigger-7:contact-1")
    assert again.duplicate and again.message.id == m.id and len(bus.published) == published
    with pytest.raises(ActionError):
        await do_send_proactive(runtime, contact.id, "   ")
