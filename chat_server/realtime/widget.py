"""The widget's socket: one visitor, their own conversation, nothing else."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.websockets import WebSocket

from ..actions.arrivals import do_visitor_arrive
from ..actions.attachments import resolve_attachments
from ..actions.errors import ActionError
from ..actions.events import do_record_event
from ..actions.identify import do_identify, do_leave_email
from ..actions.lead_form import do_submit_lead_form
from ..actions.messages import do_contact_message, do_contact_receipt
from ..actions.typing import do_contact_typing
from ..frames import (
    AckFrame,
    EmailSavedFrame,
    IdentifiedFrame,
    LeadFormSavedFrame,
    Ping,
    PongFrame,
    TokenFrame,
    VisitorHello,
    VisitorIdentify,
    VisitorLeadForm,
    VisitorLeaveEmail,
    VisitorReceipt,
    VisitorSend,
    VisitorTrack,
    VisitorTyping,
    VisitorWelcome,
    visitor_frame_adapter,
)
from ..models import Channel
from ..reads.conversations import of_contact
from ..views import visitor_conversation_view
from .connection import Connection
from .services import SocketServices
from .socket import client_ip, error_frame, read_hello, run_socket, send_and_close


def origin_allowed(ws: WebSocket, allow_list: list[str]) -> bool:
    origin = ws.headers.get("origin")
    if origin is None or "*" in allow_list:
        return True  # not a browser, or the admin allows every site
    origin = origin.rstrip("/").lower()
    if origin in (o.lower() for o in allow_list):
        return True
    # The server's own pages: same host and same scheme (http pages open ws://, https wss://),
    # so a page served over plain http elsewhere cannot pass for the https site.
    own_scheme = "https" if ws.url.scheme == "wss" else "http"
    host = (ws.headers.get("host") or "").lower()
    return bool(host) and origin == f"{own_scheme}://{host}"


async def widget_endpoint(ws: WebSocket) -> None:
    sv: SocketServices = ws.state.sockets
    settings = sv.rt.settings
    origin = ws.headers.get("origin", "")
    if not origin_allowed(ws, settings.origin_allow_list) and not await sv.arrivals.origins.submit(origin):
        await ws.accept()
        await send_and_close(ws, error_frame("origin_not_allowed", "this site may not embed the chat"), 1008)
        return
    await ws.accept()
    if not sv.connect_limiter.allow(client_ip(ws)):
        await send_and_close(ws, error_frame("rate_limited", "too many connections; retry later"), 1013)
        return
    hello: VisitorHello | None = await read_hello(ws, visitor_frame_adapter, settings.max_frame_bytes)
    if hello is None:
        return
    page = hello.page
    checked_at = time.monotonic()
    claim = sv.tokens.claim(hello.token, legacy=settings.visitor_legacy_tokens)
    returning = claim.visitor_id if claim else None
    try:
        arrival = await do_visitor_arrive(
            sv.rt, sv.arrivals, returning, page.url if page else "", page.referrer if page else "",
            token_version=claim.version if claim else None,
        )
    except ActionError as exc:
        await send_and_close(ws, error_frame(exc.code, exc.message, "hello"), 1008)
        return
    visitor_id, conv = arrival.visitor_id, arrival.conversation
    conn = Connection("visitor", settings.send_queue_frames, contact_id=arrival.contact_id,
                      credential=visitor_id, checked_at=checked_at)
    online = await sv.online.get(sv.rt)
    conn.send(VisitorWelcome(
        token=sv.tokens.issue(visitor_id, arrival.token_version), visitor_id=visitor_id,
        conversation=visitor_conversation_view(conv), operators_online=online,
    ).model_dump_json())
    renewal = _TokenRenewal(sv, conn, visitor_id, arrival.token_version)
    # Join the fan-out and start the resume in the same step, so nothing slips in between.
    sv.hub.add(conn)
    try:
        if conv is not None and conv.id is not None:
            after = hello.last_seq
            conn.epochs[conv.id] = conv.epoch
            if hello.epoch is not None and hello.epoch != conv.epoch:
                conn.send(error_frame("epoch_changed", "history was renumbered; reloading from the start"))
                after = 0
            conn.start_fill(conv.id, after, [], sv.backfill)
        elif returning is not None:
            # Only a known visitor can have another tab that started the conversation just now;
            # an id minted by this hello is in no other tab yet, so a new visitor costs no read.
            asyncio.create_task(_catch_new_conversation(sv, conn))
        await run_socket(ws, conn, visitor_frame_adapter, settings.max_frame_bytes,
                         lambda frame: _handle(sv, conn, frame), sv.rt.metrics.slow_consumers.inc)
    finally:
        renewal.cancel()
        sv.hub.remove(conn)


class _TokenRenewal:
    """A socket open for half a token's life hands the widget a fresh token (one timer per
    socket), so a tab left open for weeks can still reconnect and upload."""

    def __init__(self, sv: SocketServices, conn: Connection, visitor_id: str, version: int) -> None:
        self._sv, self._conn, self._visitor_id, self._version = sv, conn, visitor_id, version
        self._every = sv.tokens.max_age / 2
        self._timer = asyncio.get_running_loop().call_later(self._every, self._renew)

    def _renew(self) -> None:
        if self._conn.closed:
            return
        self._conn.send(TokenFrame(token=self._sv.tokens.issue(self._visitor_id, self._version)).model_dump_json())
        self._timer = asyncio.get_running_loop().call_later(self._every, self._renew)

    def cancel(self) -> None:
        self._timer.cancel()


async def _catch_new_conversation(sv: SocketServices, conn: Connection) -> None:
    """Another tab may have started the conversation while this one was saying hello."""
    assert conn.contact_id is not None
    conv = await of_contact(sv.rt.db, conn.contact_id)
    if conv is not None and conv.id is not None and conv.id not in conn.cursors and conv.id not in conn.filling:
        conn.epochs.setdefault(conv.id, conv.epoch)
        conn.start_fill(conv.id, 0, [], sv.backfill)


async def _handle(sv: SocketServices, conn: Connection, frame: Any) -> None:
    assert conn.contact_id is not None
    match frame:
        case VisitorSend():
            if not sv.message_limiter.allow(f"contact:{conn.contact_id}"):
                raise ActionError("rate_limited", "too many messages; wait a moment")
            attachments = await resolve_attachments(sv.rt, frame.attachment_ids, contact_id=conn.contact_id)
            stored = await do_contact_message(
                sv.rt, conn.contact_id, Channel.widget, frame.text, client_msg_id=frame.client_msg_id,
                attachments=attachments,
            )
            assert stored.message.id is not None and stored.message.public_seq is not None
            conn.send(AckFrame(
                client_msg_id=frame.client_msg_id, message_id=stored.message.id,
                seq=stored.message.public_seq, duplicate=stored.duplicate,
            ).model_dump_json())
        case VisitorTyping():
            conversation_id = next(iter(conn.cursors), None)
            if conversation_id is not None and sv.typing_limiter.allow(f"contact:{conn.contact_id}"):
                await do_contact_typing(sv.rt, conn.contact_id, conversation_id, frame.is_typing)
        case VisitorReceipt():
            await do_contact_receipt(sv.rt, conn.contact_id, frame.state, frame.seq)
        case VisitorTrack():
            if not sv.event_limiter.allow(f"contact:{conn.contact_id}"):
                raise ActionError("rate_limited", "too many events; wait a moment")
            await do_record_event(sv.rt, conn.contact_id, frame.name, frame.properties, frame.url)
        case VisitorIdentify():
            done = await do_identify(
                sv.rt, conn.contact_id, user_id=frame.user_id, email=frame.email, name=frame.name,
                phone=frame.phone, properties=frame.properties, hash_given=frame.user_hash,
                operations=frame.operations,
            )
            if done.merged:
                # The hub moves this socket too when the merge's news arrives; until then the
                # next message must already go to the surviving contact.
                sv.hub.rekey(conn, done.contact_id)
            conn.send(IdentifiedFrame(merged=done.merged).model_dump_json())
        case VisitorLeaveEmail():
            await do_leave_email(sv.rt, conn.contact_id, frame.email)
            conn.send(EmailSavedFrame(email=frame.email.strip().lower()).model_dump_json())
        case VisitorLeadForm():
            field = await do_submit_lead_form(sv.rt, conn.contact_id, frame.message_id, frame.value)
            conn.send(LeadFormSavedFrame(message_id=frame.message_id, field=field).model_dump_json())
        case Ping():
            conn.send(PongFrame().model_dump_json())
        case VisitorHello():
            conn.send(error_frame("already_greeted", "hello was already received", "hello"))
