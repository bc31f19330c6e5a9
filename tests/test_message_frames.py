"""Message frames are serialised straight from the row, once per message, for speed. They must be
byte for byte what the documented models (MessageView, VisitorMessageView) give."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chat_server.actions.publish import STAFF, message_dispatches
from chat_server.frames import MessageFrame, MessageUpdatedFrame
from chat_server.models import Channel, Conversation, DeliveryState, Direction, Kind, Message
from chat_server.views import (
    message_frames,
    message_view,
    staff_message_frame,
    visitor_message_frame,
    visitor_message_view,
)

CREATED = datetime(2026, 3, 1, 9, 30, 5, 123456, tzinfo=UTC)
UPDATED = datetime(2026, 3, 1, 9, 31, tzinfo=UTC)

VARIANTS: dict[str, dict[str, Any]] = {
    "visitor text": dict(channel=Channel.widget, direction=Direction.inbound, kind=Kind.text, author_type="contact",
                         author_id=7, author_name=None, client_msg_id="c-1", public_seq=3),
    "operator reply": dict(channel=Channel.widget, direction=Direction.outbound, kind=Kind.text,
                           author_type="operator", author_id=2, author_name="Olga", client_msg_id="op-9",
                           public_seq=4, attachments=[{"url": "/a/1", "name": "x.png", "content_type": "image/png",
                                                       "size": 12}]),
    "private note": dict(channel=Channel.internal, direction=Direction.internal, kind=Kind.note,
                         author_type="operator", author_id=2, author_name="Olga", public_seq=None),
    "failed email": dict(channel=Channel.email, direction=Direction.outbound, kind=Kind.text, author_type="operator",
                         author_id=3, author_name="Ivan", public_seq=5, delivery_state=DeliveryState.failed,
                         delivery_error="550 mailbox unavailable"),
    "proactive card": dict(channel=Channel.widget, direction=Direction.outbound, kind=Kind.automatic,
                           author_type="bot", author_id=None, author_name="Helper", public_seq=1, display="card"),
    # Rows read back from the database carry plain strings where new rows carry enum members.
    "as read from the database": dict(channel="telegram", direction="inbound", kind="text", author_type="contact",
                                      author_id=8, author_name="Ann \u00e9\u4e2d \"q\"", client_msg_id=None,
                                      public_seq=2, delivery_state="delivered"),
}


def message(**fields: Any) -> Message:
    return Message(id=41, conversation_id=5, seq=9, text="hello <b>there</b>\n\u2603", created_at=CREATED,
                   updated_at=UPDATED, **fields)


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("frame_type", [MessageFrame, MessageUpdatedFrame])
def test_frames_match_the_documented_models(name: str, frame_type: type[MessageFrame | MessageUpdatedFrame]) -> None:
    m = message(**VARIANTS[name])
    staff, visitor = message_frames(m, frame_type.model_fields["type"].default)
    assert staff == frame_type(message=message_view(m)).model_dump_json()
    if m.public_seq is None:
        assert visitor is None
    else:
        assert visitor == frame_type(message=visitor_message_view(m)).model_dump_json()


def test_deliveries_number_the_frames_for_each_audience() -> None:
    m = message(**VARIANTS["operator reply"])
    conv = Conversation(id=5, contact_id=7, epoch=2)
    staff, visitor = message_dispatches(m, conv)
    assert (staff.audience, staff.seq, staff.epoch) == (STAFF, 9, 2)
    assert (visitor.audience.contact_ids, visitor.seq, visitor.epoch) == ((7,), 4, 2)
    assert MessageFrame.model_validate_json(visitor.frame).message.author.id is None  # no internal ids
    updated = message_dispatches(m, conv, updated=True)
    assert [d.seq for d in updated] == [None, None]
    assert all(MessageUpdatedFrame.model_validate_json(d.frame) for d in updated)
    note = message_dispatches(message(**VARIANTS["private note"]), conv)
    assert [d.audience for d in note] == [STAFF]


@pytest.mark.parametrize("name", [n for n, v in VARIANTS.items() if v["public_seq"] is not None])
def test_resume_frames_are_the_live_frames(name: str) -> None:
    m = message(**VARIANTS[name])
    assert (staff_message_frame(m), visitor_message_frame(m)) == message_frames(m)
