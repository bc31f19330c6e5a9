"""A person asks what is stored about them, then asks for it to be deleted."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from typing import Any

import httpx
import pytest
from sqlmodel import select

from chat_server.db import Database
from chat_server.models import AuditRecord, WebhookDelivery
from chat_server.reads.personal_data import owned_keys
from tests.harness import ChatServer, Socket, api, create_operator, login, operator, visitor
from tests.test_access import close_code

pytestmark = pytest.mark.anyio

SHARED = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64  # both visitors send these same bytes (one stored file)
OWN = b"\x89PNG\r\n\x1a\n" + b"\x02" * 64


def uid() -> str:
    return uuid.uuid4().hex


def widget_http(server: ChatServer, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.http + "/api/v1", headers={"authorization": f"Visitor {token}"}, timeout=10)


async def person(server: ChatServer, files: list[bytes], text: str) -> tuple[Socket, dict[str, Any], list[dict[str, Any]]]:
    v, welcome = await visitor(server)
    async with widget_http(server, welcome["token"]) as http:
        uploads = []
        for n, data in enumerate(files):
            r = await http.post("/widget/attachments", params={"name": f"f{n}.png"}, content=data,
                                headers={"content-type": "image/png"})
            assert r.status_code == 201, r.text
            uploads.append(r.json())
    await v.send(type="message.send", client_msg_id=uid(), text=text, attachment_ids=[u["id"] for u in uploads])
    await v.expect("ack")
    await v.send(type="track", name="Added to cart", properties={"amount": 100})
    await v.send(type="identify", email=f"{uid()}@example.com", name="Anna", properties={})
    await v.expect("identified")
    return v, welcome, uploads


async def test_export_then_delete_everything_of_one_person(server: ChatServer) -> None:
    admin = await login(server)
    inbox = await operator(server, admin)
    async with api(server, admin) as http:  # its deliveries carry her data until pruned
        r = await http.post("/webhooks", json={"name": "CRM", "url": "https://crm.example.com/hooks",
                                                "events": ["contact.created", "message.created"]})
        assert r.status_code == 201, r.text
    a, a_welcome, a_files = await person(server, [SHARED, OWN], "I am Anna, delete me later")
    b, b_welcome, b_files = await person(server, [SHARED], "I am Boris, keep me")
    async with api(server, admin) as http:
        a_conv = (await inbox.expect("message", text="I am Anna, delete me later"))["message"]["conversation_id"]
        b_conv = (await inbox.expect("message", text="I am Boris, keep me"))["message"]["conversation_id"]
        r = await http.post(f"/conversations/{a_conv}/notes", json={"text": "VIP, called twice"})
        assert r.status_code == 201
        a_contact = (await http.get(f"/conversations/{a_conv}")).json()["contact"]["id"]

        # Only admins: an operator and a sales rep are refused and nothing is recorded.
        for role in ("operator", "sales"):
            other = await create_operator(server, admin, f"{uid()}@example.com", role=role)
            async with api(server, other) as them:
                assert (await them.get(f"/contacts/{a_contact}/export")).status_code == 403
                assert (await them.delete(f"/contacts/{a_contact}")).status_code == 403

        r = await http.get(f"/contacts/{a_contact}/export")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(r.content))
        document = json.loads(archive.read("contact.json"))
        tables = document["tables"]
        assert [c["id"] for c in tables["contact"]] == [a_contact]
        assert {i["kind"] for i in tables["contact_identity"]} == {"visitor", "email"}
        assert [m["text"] for m in tables["message"] if m["kind"] in ("text", "note")] == [
            "I am Anna, delete me later", "VIP, called twice"]
        assert "Added to cart" in {e["name"] for e in tables["event"]}
        told = [json.loads(d["body"]) for d in tables["webhook_delivery"]]
        assert "I am Anna, delete me later" in {e["data"]["message"]["text"] for e in told if "message" in e["data"]}
        assert all(d["order_key"] == f"contact:{a_contact}" for d in tables["webhook_delivery"])
        assert sorted(archive.read(f["file"]) for f in document["files"]) == sorted([SHARED, OWN])
        assert b"I am Boris" not in archive.read("contact.json")

        r = await http.delete(f"/contacts/{a_contact}")
        assert r.status_code == 200, r.text
        deleted = r.json()["deleted"]
        assert deleted["contact"] == 1 and deleted["conversation"] == 1 and deleted["message"] >= 2
        removed = await inbox.expect("conversation.removed", conversation_id=a_conv)
        assert await close_code(a) == 4401  # her open widget is closed at once
        assert removed["merged_into_conversation_id"] is None
        assert (await http.get(f"/conversations/{a_conv}")).status_code == 404
        assert (await http.delete(f"/contacts/{a_contact}")).status_code == 404
        # The other person keeps everything, the file both sent included.
        b_thread = (await http.get(f"/conversations/{b_conv}/messages")).json()["items"]
        assert [m["text"] for m in b_thread] == ["I am Boris, keep me"]
        shared = await http.get(b_files[0]["url"].removeprefix("/api/v1"))
        assert shared.status_code == 200 and shared.content == SHARED
        # Anna's own file is gone from the disk too (it is stored once, by content).
        assert (await http.get(a_files[1]["url"].removeprefix("/api/v1"))).status_code == 404

    # Nothing in any table still belongs to her, and the audit says who and when, not what.
    db = Database(server.database_url)
    try:
        async with db.read() as s:
            assert await owned_keys(s, a_contact) == {"contact": {a_contact}}  # only the id it started from
            kept = (await s.exec(select(WebhookDelivery.body))).all()  # type: ignore[call-overload]
            records = (await s.exec(select(AuditRecord).order_by(AuditRecord.id))).all()  # type: ignore[arg-type]
    finally:
        await db.dispose()
    assert [(r.action, r.subject_id) for r in records][-2:] == [("contact_exported", a_contact), ("contact_deleted", a_contact)]
    assert all(not hasattr(r, "text") for r in records)
    assert not any("I am Anna" in body for body in kept) and any("I am Boris" in body for body in kept)

    # Her widget starts afresh: the old token finds no card and gets a new, empty one.
    again, welcome = await visitor(server, token=a_welcome["token"])
    assert welcome["conversation"]["last_seq"] == 0
    await again.close()
    await b.close()
    await inbox.close()
