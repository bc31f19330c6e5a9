"""The inbox's socket: an operator's live view of every conversation they may read."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.websockets import WebSocket

from ..actions.attachments import resolve_attachments
from ..actions.errors import ActionError, NotFound
from ..actions.messages import check_can_write, do_operator_read, do_send_operator_message
from ..actions.operators import do_set_availability
from ..actions.presence import do_mark_inbox_seen
from ..actions.typing import do_operator_typing
from ..frames import (
    AckFrame,
    ConversationRemovedFrame,
    OperatorHello,
    OperatorPresence,
    OperatorRead,
    OperatorSend,
    OperatorTyping,
    OperatorWelcome,
    Ping,
    PongFrame,
    ResetFrame,
    operator_frame_adapter,
)
from ..models import Availability, Conversation, Operator, Role
from ..reads import conversations, operators
from ..views import operator_view
from .connection import Connection
from .services import SocketServices
from .socket import error_frame, read_hello, run_socket, send_and_close

log = logging.getLogger(__name__)


async def inbox_endpoint(ws: WebSocket) -> None:
    sv: SocketServices = ws.state.sockets
    settings = sv.rt.settings
    await ws.accept()
    hello: OperatorHello | None = await read_hello(ws, operator_frame_adapter, settings.max_frame_bytes)
    if hello is None:
        return
    checked_at = time.monotonic()
    operator = await operators.authenticate(sv.rt.db, hello.token)
    if operator is None:
        await send_and_close(ws, error_frame("unauthorized", "log in again", "hello"), 4401)
        return
    cursors = {int(k): v for k, v in hello.cursors.items()}
    everyone = await operators.active(sv.rt.db)
    known = await conversations.by_ids(sv.rt.db, list(cursors))
    conn = Connection("operator", settings.send_queue_frames, operator_id=operator.id, role=operator.role,
                      credential=operators.token_hash(hello.token), checked_at=checked_at)
    conn.send(OperatorWelcome(operator=operator_view(operator), operators=[operator_view(o) for o in everyone]).model_dump_json())
    sv.hub.add(conn)
    try:
        # Cursors first, with no wait between joining the fan-out and setting them: a message
        # published in between would go out as news and again with the back-fill.
        _resume(sv, conn, cursors, list(known))
        await do_mark_inbox_seen(sv.rt, [operator.id or 0])
        await run_socket(ws, conn, operator_frame_adapter, settings.max_frame_bytes,
                         lambda frame: _handle(sv, conn, operator, frame), sv.rt.metrics.slow_consumers.inc)
    finally:
        sv.hub.remove(conn)
        await _left(sv, operator.id or 0)


async def _left(sv: SocketServices, operator_id: int) -> None:
    """The away period counts from the moment the last inbox closed, not from the heartbeat."""
    if sv.hub.operators.get(operator_id):
        return
    try:
        await do_mark_inbox_seen(sv.rt, [operator_id])
    except Exception:  # the server is stopping: the heartbeat's stamp is a little older, that is all
        log.warning("could not record when operator %s left the inbox", operator_id, exc_info=True)


def _resume(sv: SocketServices, conn: Connection, cursors: dict[int, Any], known: list[Conversation]) -> None:
    """Give back what the inbox missed in the threads it holds; nothing it already has."""
    found = {c.id: c for c in known}
    for conversation_id, cursor in cursors.items():
        conv = found.get(conversation_id)
        if conv is None:
            conn.send(ConversationRemovedFrame(conversation_id=conversation_id, merged_into_conversation_id=None).model_dump_json())
            continue
        sv.contact_of[conversation_id] = conv.contact_id
        after = cursor.seq
        if cursor.epoch != conv.epoch:
            conn.send(ResetFrame(conversation_id=conversation_id, epoch=conv.epoch).model_dump_json())
            after = 0
        conn.epochs[conversation_id] = conv.epoch
        conn.cursors[conversation_id] = after
        if conv.last_seq > after:
            conn.start_fill(conversation_id, after, [], sv.backfill)


async def _contact_of(sv: SocketServices, conversation_id: int) -> int:
    if conversation_id not in sv.contact_of:
        contact_id = await conversations.contact_id_of(sv.rt.db, conversation_id)
        if contact_id is None:
            raise NotFound("conversation_not_found", "no such conversation")
        if len(sv.contact_of) > 100_000:
            sv.contact_of.clear()
        sv.contact_of[conversation_id] = contact_id
    return sv.contact_of[conversation_id]


async def _handle(sv: SocketServices, conn: Connection, operator: Operator, frame: Any) -> None:
    if conn.closed:
        return  # revoked while this frame waited: nothing more is done on its behalf
    # The hub keeps the role current when an admin changes it (realtime/hub.py).
    if conn.role is not None and operator.role != conn.role:
        operator.role = Role(conn.role)
    match frame:
        case OperatorSend():
            attachments = await resolve_attachments(sv.rt, frame.attachment_ids, staff=True)
            stored = await do_send_operator_message(
                sv.rt, operator, frame.conversation_id, frame.text, client_msg_id=frame.client_msg_id,
                note=frame.kind == "note", channel=frame.channel, attachments=attachments,
            )
            assert stored.message.id is not None
            conn.send(AckFrame(client_msg_id=frame.client_msg_id, message_id=stored.message.id,
                               seq=stored.message.seq, duplicate=stored.duplicate).model_dump_json())
        case OperatorTyping():
            check_can_write(operator)
            if sv.typing_limiter.allow(f"operator:{operator.id}"):
                contact_id = await _contact_of(sv, frame.conversation_id)
                await do_operator_typing(sv.rt, operator, frame.conversation_id, contact_id, frame.is_typing)
        case OperatorRead():
            await do_operator_read(sv.rt, operator, frame.conversation_id, frame.seq)
        case OperatorPresence():
            await do_set_availability(sv.rt, operator, Availability(frame.availability))
        case Ping():
            conn.send(PongFrame().model_dump_json())
        case OperatorHello():
            raise ActionError("already_greeted", "hello was already received")



