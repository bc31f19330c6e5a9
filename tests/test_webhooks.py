"""Outgoing webhooks against a real HTTP receiver on loopback: signed, retried after a 500 and
delivered once, nothing sent twice across a restart or by two processes, a hung endpoint
never slowing the inbox, bad input refused. Real `chat-server serve` processes on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from chat_server.actions.webhook_events import emit_trigger_fired
from chat_server.actions.webhooks import WebhookDirectory, do_create_endpoint
from chat_server.models import Operator, Role, WebhookDelivery
from tests.harness import ChatServer, Socket, api, login, operator, visitor
from tests.inprocess import RecordingBus
from tests.webhook_receiver import Receiver, verify

pytestmark = pytest.mark.anyio

ENV = {"CHAT_WEBHOOK_ALLOW_HTTP_LOOPBACK": "true", "CHAT_WEBHOOK_RETRY_SECONDS": "0.2"}


async def register(server: ChatServer, url: str, events: list[str]) -> dict[str, Any]:
    async with api(server, await login(server)) as http:
        r = await http.post("/webhooks", json={"name": "CRM", "url": url, "events": events})
        assert r.status_code == 201, r.text
        return dict(r.json())


async def send_test_and_wait(server: ChatServer, crm: Receiver, hook_id: int) -> None:
    """Something observable that leaves after everything before it: the test event arriving."""
    before = len(crm.accepted("webhook.test"))
    async with api(server, await login(server)) as http:
        assert (await http.post(f"/webhooks/{hook_id}/test")).status_code == 202
    await crm.until(lambda: len(crm.accepted("webhook.test")) > before)


async def test_signed_retried_after_a_500_and_delivered_once(db_url: str, tmp_path: Path) -> None:
    server = ChatServer(tmp_path, db_url, **ENV)
    server.start()
    try:
        async with Receiver(statuses=[500]) as crm:
            hook = await register(server, crm.url, ["message.created"])
            secret = hook["secret"]
            assert secret.startswith("whsec_") and hook["secret_prefix"] == secret[:10]
            v, _ = await visitor(server)
            await v.send(type="message.send", client_msg_id="m1", text="Привет, CRM")
            await v.expect("ack", client_msg_id="m1")
            await crm.until(lambda: len(crm.accepted("message.created")) == 1)

            refused, accepted = crm.requests[0], crm.requests[1]
            assert (refused.status, accepted.status) == (500, 200)
            assert refused.delivery_id == accepted.delivery_id and refused.body == accepted.body
            assert verify(secret, accepted.headers, accepted.body)
            assert not verify(secret, accepted.headers, accepted.body.replace(b"CRM", b"crm"))
            assert not verify("whsec_someone-else", accepted.headers, accepted.body)
            event = accepted.event
            assert event["type"] == "message.created" and accepted.headers["X-Webhook-Event"] == "message.created"
            assert event["data"]["message"]["text"] == "Привет, CRM"
            assert event["data"]["message"]["direction"] == "inbound"

            await send_test_and_wait(server, crm, hook["id"])
            assert [r.status for r in crm.requests if r.event["type"] == "message.created"] == [500, 200]
            async with api(server, await login(server)) as http:
                listed = (await http.get("/webhooks")).json()["items"]
                assert "secret" not in listed[0]
                assert listed[0]["last_status_code"] == 200 and listed[0]["last_error"] is None
                assert listed[0]["last_attempt_at"] is not None and listed[0]["waiting"] == 0
                deliveries = (await http.get(f"/webhooks/{hook['id']}/deliveries")).json()["items"]
                message = next(d for d in deliveries if d["event_type"] == "message.created")
                assert (message["state"], message["attempts"], message["last_status_code"]) == ("delivered", 2, 200)
                # A rotated secret signs from the next delivery on.
                rotated = (await http.post(f"/webhooks/{hook['id']}/rotate-secret")).json()["secret"]
                assert rotated != secret
            await send_test_and_wait(server, crm, hook["id"])
            last = crm.accepted("webhook.test")[-1]
            assert verify(rotated, last.headers, last.body) and not verify(secret, last.headers, last.body)
            await v.close()
    finally:
        server.stop()


async def test_nothing_is_delivered_twice_across_a_restart(db_url: str, tmp_path: Path) -> None:
    server = ChatServer(tmp_path, db_url, **ENV)
    server.start()
    try:
        async with Receiver(delay=0.3) as crm:
            hook = await register(server, crm.url, ["message.created"])
            v, _ = await visitor(server)
            for i in range(20):
                await v.send(type="message.send", client_msg_id=f"m{i}", text=f"m{i}")
                await v.expect("ack", client_msg_id=f"m{i}")
            await crm.until(lambda: len(crm.requests) >= 3)
            await asyncio.to_thread(server.stop)  # SIGTERM with the queue half sent
            assert len(crm.accepted()) < 20
            await asyncio.to_thread(server.start)
            await crm.until(lambda: len(crm.accepted()) == 20, 40)
            await send_test_and_wait(server, crm, hook["id"])
            messages = [r for r in crm.requests if r.event["type"] == "message.created"]
            assert len({r.delivery_id for r in messages}) == len(messages) == 20
            # One contact's events arrive in the order they were written.
            assert [r.event["data"]["message"]["text"] for r in messages] == [f"m{i}" for i in range(20)]
            await v.close()
    finally:
        server.stop()


async def round_trips(v: Socket, op: Socket, prefix: str, count: int = 10) -> list[float]:
    """Seconds from a visitor's message leaving to the operator's socket receiving it."""
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        await v.send(type="message.send", client_msg_id=f"{prefix}{i}", text=f"{prefix}{i}")
        await op.expect("message", text=f"{prefix}{i}")
        latencies.append(time.perf_counter() - started)
    return latencies


async def test_a_hung_endpoint_does_not_slow_message_handling(db_url: str, tmp_path: Path) -> None:
    server = ChatServer(tmp_path, db_url, CHAT_WEBHOOK_TIMEOUT="30", **ENV)
    server.start()
    try:
        async with Receiver(hang=True) as crm:
            op = await operator(server, await login(server))
            v, _ = await visitor(server)
            before = await round_trips(v, op, "before")
            await register(server, crm.url, ["message.created", "contact.created", "conversation.created"])
            v2, _ = await visitor(server)  # a new contact: its contact.created goes out and hangs
            await crm.until(lambda: len(crm.requests) >= 1)
            hanging = await round_trips(v, op, "during")
            # Still hanging: every message above crossed the inbox while the endpoint held a request.
            assert all(r.status is None for r in crm.requests)
            assert statistics.median(hanging) < 3 * statistics.median(before) + 0.25, (before, hanging)
            assert max(hanging) < 5.0, hanging  # a blocked inbox would wait for the 30 s timeout
            for sock in (v, v2, op):
                await sock.close()
    finally:
        server.stop()


async def test_two_processes_deliver_each_event_once(db_url: str, tmp_path: Path) -> None:
    first = ChatServer(tmp_path, db_url, **ENV)
    first.start()
    second = ChatServer(tmp_path, db_url, **ENV)
    second.start()
    sockets: list[Socket] = []
    try:
        async with Receiver(delay=0.05) as crm:
            hook = await register(first, crm.url, ["contact.created"])
            for _ in range(20):
                sock, _ = await visitor(first)
                sockets.append(sock)
            await crm.until(lambda: len(crm.accepted("contact.created")) >= 20)
            await send_test_and_wait(second, crm, hook["id"])
            created = [r for r in crm.requests if r.event["type"] == "contact.created"]
            assert len(created) == 20 and len({r.delivery_id for r in created}) == 20
            assert len({r.event["data"]["contact"]["id"] for r in created}) == 20
    finally:
        for sock in sockets:
            await sock.close()
        second.stop()
        first.stop()


async def test_bad_input_is_refused_clearly_and_changes_nothing(server: ChatServer) -> None:
    async with api(server, await login(server)) as http:
        before = (await http.get("/webhooks")).json()["items"]
        for body, code in [
            ({"name": "x", "url": "http://127.0.0.1:9/hooks", "events": ["message.created"]}, "invalid_url"),
            ({"name": "x", "url": "http://crm.example.com/hooks", "events": ["message.created"]}, "invalid_url"),
            ({"name": "x", "url": "ftp://crm.example.com/", "events": ["message.created"]}, "invalid_url"),
            ({"name": "x", "url": "crm.example.com", "events": ["message.created"]}, "invalid_url"),
            # Not a way into the server's own network: loopback, private, link-local (metadata).
            ({"name": "x", "url": "https://127.0.0.1:9/hooks", "events": ["message.created"]}, "invalid_url"),
            ({"name": "x", "url": "https://10.0.0.5/hooks", "events": ["message.created"]}, "invalid_url"),
            ({"name": "x", "url": "https://[::1]/hooks", "events": ["message.created"]}, "invalid_url"),
            ({"name": "x", "url": "https://169.254.169.254/latest", "events": ["message.created"]}, "invalid_url"),
            ({"name": "x", "url": "https://[::ffff:192.168.1.1]/h", "events": ["message.created"]}, "invalid_url"),
            ({"name": "x", "url": "https://crm.example.com/h", "events": ["message.sent"]}, "invalid_body"),
            ({"name": "x", "url": "https://crm.example.com/h", "events": []}, "invalid_body"),
            ({"name": "", "url": "https://crm.example.com/h", "events": ["message.created"]}, "invalid_body"),
        ]:
            r = await http.post("/webhooks", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["error"]["code"] == code, r.text
        assert (await http.get("/webhooks")).json()["items"] == before
        r = await http.post("/webhooks", json={"name": "CRM", "url": "https://crm.example.com/h",
                                                "events": ["contact.created"]})
        assert r.status_code == 201
        hook = r.json()
        r = await http.patch(f"/webhooks/{hook['id']}", json={"url": "http://crm.example.com/h"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_url"
        r = await http.patch(f"/webhooks/{hook['id']}", json={"events": ["contact.deleted"]})
        assert r.status_code == 422
        unchanged = next(h for h in (await http.get("/webhooks")).json()["items"] if h["id"] == hook["id"])
        assert (unchanged["url"], unchanged["events"]) == ("https://crm.example.com/h", ["contact.created"])
        assert (await http.delete(f"/webhooks/{hook['id']}")).status_code == 200
        assert (await http.get(f"/webhooks/{hook['id']}/deliveries")).status_code == 404
        assert (await http.post(f"/webhooks/{hook['id']}/test")).status_code == 404


async def test_a_name_that_resolves_to_this_machine_is_not_connected_to(server: ChatServer) -> None:
    # A name passes when saved (DNS can change); each connect checks what it resolves to then.
    async with api(server, await login(server)) as http:
        r = await http.post("/webhooks", json={"name": "Inside", "url": "https://localhost:9/hooks",
                                                "events": ["contact.created"]})
        assert r.status_code == 201, r.text
        hook = r.json()
        assert (await http.post(f"/webhooks/{hook['id']}/test")).status_code == 202

        async def tried() -> dict[str, Any] | None:
            items = (await http.get(f"/webhooks/{hook['id']}/deliveries")).json()["items"]
            return items[0] if items and items[0]["last_error"] else None
        delivery = None
        for _ in range(100):
            delivery = await tried()
            if delivery:
                break
            await asyncio.sleep(0.1)
        assert delivery is not None, "the test delivery was never tried"
        assert "resolves only to private or reserved addresses" in delivery["last_error"], delivery
        assert delivery["last_status_code"] is None and delivery["state"] != "delivered"
        assert (await http.delete(f"/webhooks/{hook['id']}")).status_code == 200


async def test_events_are_queued_in_the_writing_transaction_only(db_url: str) -> None:
    from tests.inprocess import make_runtime

    rt, bus = await make_runtime(db_url)
    assert isinstance(bus, RecordingBus)
    try:
        rt.webhooks = WebhookDirectory()
        rt.db.write_events = rt.webhooks.write_events
        admin = Operator(id=1, name="a", email="a@example.com", role=Role.admin, password_hash="x")
        hook = await do_create_endpoint(rt, admin, "CRM", "https://crm.example.com/h", ["trigger.fired"])
        with pytest.raises(RuntimeError):
            async with rt.db.write() as s:
                emit_trigger_fired(s, 7, "Welcome", None)
                raise RuntimeError("the write fails")
        async with rt.db.write() as s:
            emit_trigger_fired(s, 8, "Follow-up", None, {"action": "send_message"})
            s.emit("message.created", {"not": "wanted"})  # no endpoint asked for it: nothing queued
        async with rt.db.read() as s:
            rows = list((await s.exec(select(WebhookDelivery))).all())
        assert [(r.endpoint_id, r.event_type, r.state) for r in rows] == [(hook.id, "trigger.fired", "pending")]
        assert '"trigger":{"id":8,"name":"Follow-up"}' in rows[0].body and '"action":"send_message"' in rows[0].body
    finally:
        await rt.db.dispose()


async def test_finished_deliveries_are_forgotten_after_a_week(db_url: str) -> None:
    from datetime import timedelta

    from chat_server.actions.webhook_deliveries import do_prune_finished
    from chat_server.models.types import utcnow
    from tests.inprocess import make_runtime

    rt, _ = await make_runtime(db_url)
    try:
        admin = Operator(id=1, name="a", email="a@example.com", role=Role.admin, password_hash="x")
        hook = await do_create_endpoint(rt, admin, "CRM", "https://crm.example.com/h", ["contact.created"])
        assert hook.id is not None
        now = utcnow()
        async with rt.db.write() as s:
            for state, finished in [("delivered", now - timedelta(days=8)), ("failed", now - timedelta(days=8)),
                                    ("delivered", now - timedelta(days=1)), ("pending", None)]:
                s.add(WebhookDelivery(endpoint_id=hook.id, event_id=state, event_type="contact.created",
                                      order_key="k", body="{}", state=state, finished_at=finished))
        assert await do_prune_finished(rt, batch=1) == 2
        async with rt.db.read() as s:
            left = sorted((r.state, r.finished_at is None) for r in (await s.exec(select(WebhookDelivery))).all())
        assert left == [("delivered", False), ("pending", True)]
    finally:
        await rt.db.dispose()


async def test_each_action_emits_its_event(db_url: str) -> None:
    import json

    from chat_server.actions.contact_edit import do_update_contact
    from chat_server.actions.contacts import find_or_create_contact
    from chat_server.actions.conversations import do_set_status
    from chat_server.actions.merge import do_merge_contacts
    from chat_server.actions.messages import do_contact_message, do_send_operator_message
    from chat_server.actions.operators import do_create_operator
    from chat_server.actions.webhooks import EVENT_TYPES
    from chat_server.models import Channel, IdentityKind, Status
    from tests.inprocess import make_runtime

    rt, _ = await make_runtime(db_url)
    try:
        rt.webhooks = WebhookDirectory()
        rt.db.write_events = rt.webhooks.write_events
        admin = await do_create_operator(rt, "Ada", "ada@example.com", "long password", Role.admin)
        await do_create_endpoint(rt, admin, "CRM", "https://crm.example.com/h", list(EVENT_TYPES))
        ids = []
        for value in ("v-1", "v-2"):
            async with rt.db.write() as s:
                contact, _ = await find_or_create_contact(s, IdentityKind.visitor, value, "test")
            assert contact.id is not None
            ids.append(contact.id)
        first = await do_contact_message(rt, ids[0], Channel.widget, "hello", client_msg_id="c1")
        conversation_id = first.conversation.id or 0
        await do_send_operator_message(rt, admin, conversation_id, "hi there")
        await do_set_status(rt, admin, conversation_id, Status.closed)
        await do_contact_message(rt, ids[0], Channel.widget, "again", client_msg_id="c2")  # reopens
        await do_update_contact(rt, admin, ids[0], name="Ann")
        await do_merge_contacts(rt, ids[0], ids[1], "same person", operator=admin)
        async with rt.db.read() as s:
            rows = list((await s.exec(select(WebhookDelivery).order_by(WebhookDelivery.id))).all())  # type: ignore[arg-type]
        events = [(r.event_type, json.loads(r.body)["data"]) for r in rows]
        assert [t for t, _ in events] == [
            "contact.created", "contact.created", "conversation.created", "message.created", "message.created",
            "conversation.status_changed", "conversation.status_changed", "message.created", "contact.updated",
            "contact.merged"]
        assert events[4][1]["message"]["text"] == "hi there" and events[4][1]["message"]["direction"] == "outbound"
        closed, reopened = events[5][1], events[6][1]
        assert (closed["previous_status"], closed["conversation"]["status"], closed["changed_by"]) == ("open", "closed", admin.id)
        assert (reopened["previous_status"], reopened["conversation"]["status"]) == ("closed", "open")
        assert events[8][1]["contact"]["name"] == "Ann" and events[8][1]["changed"] == ["name"]
        assert (events[9][1]["contact"]["id"], events[9][1]["merged_id"]) == (ids[0], ids[1])
        assert {r.order_key for r in rows} == {f"contact:{i}" for i in ids} | {f"contact:{ids[0]}"}
    finally:
        await rt.db.dispose()
