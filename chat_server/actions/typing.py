"""Typing indicators: news with nothing behind it in the database.

Every other action publishes through its write's unit of work, after the commit (db.py). A
typing frame changes no row, so there is no transaction to wait for and nothing it could be
early for; it goes to the bus at once. It carries no seq either: a lost one is not resumed
or back-filled, the next keystroke (or its absence) corrects it. This is the one action that
calls the bus itself, and a test (tests/test_unit_of_work.py) keeps it the only one.
"""

from __future__ import annotations

from ..bus import Dispatch, DispatchKind
from ..frames import Author, TypingFrame
from ..models import Operator
from ..runtime import Runtime
from .messages import check_can_write
from .publish import STAFF, contact_audience


async def do_contact_typing(rt: Runtime, contact_id: int, conversation_id: int, is_typing: bool) -> None:
    """The visitor is typing (or stopped): the team sees it in that conversation."""
    frame = TypingFrame(conversation_id=conversation_id, author=Author(type="contact", id=contact_id),
                        is_typing=is_typing)
    await rt.bus.publish([Dispatch(DispatchKind.typing, STAFF, frame.model_dump_json())])


async def do_operator_typing(
    rt: Runtime, operator: Operator, conversation_id: int, contact_id: int, is_typing: bool
) -> None:
    """An operator is typing a reply: the team sees who, the contact sees a name and nothing
    else (no operator id, no conversation id: a visitor has one conversation)."""
    check_can_write(operator)
    staff = TypingFrame(conversation_id=conversation_id, author=Author(type="operator", id=operator.id, name=operator.name),
                        is_typing=is_typing)
    public = TypingFrame(author=Author(type="operator", name=operator.name), is_typing=is_typing)
    await rt.bus.publish([
        Dispatch(DispatchKind.typing, STAFF, staff.model_dump_json()),
        Dispatch(DispatchKind.typing, contact_audience(contact_id), public.model_dump_json()),
    ])
