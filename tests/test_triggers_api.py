"""Triggers over REST on a running server (SQLite and PostgreSQL): bad definitions get a clear
422 and store nothing; create, change, pause, duplicate, delete; the preview; and the trigger's
message on the visitor's socket, once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.harness import ChatServer, api, login, visitor

pytestmark = pytest.mark.anyio


def body(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": f"pricing {uuid.uuid4().hex[:8]}", "enabled": True,
        "when": {"type": "event", "event": "page_viewed", "url_contains": "/pricing", "count": 3, "within_minutes": 10},
        "audience": {"filter": {"kind": "group", "match": "all", "conditions": [
            {"kind": "field", "field": "email", "op": "not_set"}]}},
        "delay_seconds": 1, "channel": "widget_chat",
        "variants": [{"name": "A", "weight": 100, "text": "Hi {{ contact.name | default: 'there' }}!"}],
        "limits": {"frequency": "once"},
    }
    base.update(changes)
    return base


@pytest.mark.parametrize(("changes", "expected"), [
    ({"variants": [{"name": "A", "weight": 70, "text": "x"}, {"name": "B", "weight": 20, "text": "y"}]},
     "weights add up to 90, not 100"),
    ({"variants": [{"name": "A", "weight": 100, "text": "Hi {{ contact.name "}]}, "does not parse"),
    ({"hours": {"timezone": "Nowhere/Land", "days": {"mon": [["09:00", "18:00"]]}}}, "IANA time zone"),
    ({"when": {"type": "event", "event": "page_viewed", "count": 0}}, "greater than or equal to 1"),
    ({"control_percent": 91}, "less than or equal to 90"),
])
async def test_bad_definitions_are_refused_clearly_and_store_nothing(server: ChatServer, changes: dict[str, Any],
                                                                    expected: str) -> None:
    admin = await login(server)
    async with api(server, admin) as http:
        before = (await http.get("/triggers")).json()["items"]
        r = await http.post("/triggers", json=body(**changes))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_body"
        assert any(expected in d["msg"] for d in r.json()["error"]["details"]), r.json()
        assert (await http.get("/triggers")).json()["items"] == before


async def test_create_change_pause_duplicate_delete_and_preview(server: ChatServer) -> None:
    admin = await login(server)
    async with api(server, admin) as http:
        r = await http.post("/triggers", json=body(enabled=False))
        assert r.status_code == 201, r.text
        made = r.json()
        assert (made["enabled"], made["version"], made["matched"], made["sent"]) == (False, 1, 0, 0)
        tid = made["id"]
        # A change that makes the whole wrong is refused as a whole, and changes nothing.
        r = await http.patch(f"/triggers/{tid}", json={"variants": [
            {"name": "A", "weight": 50, "text": "x"}, {"name": "A", "weight": 50, "text": "y"}]})
        assert r.status_code == 422 and "unique" in r.text, r.text
        r = await http.patch(f"/triggers/{tid}", json={"control_percent": 10, "variants": [
            {"name": "A", "weight": 60, "text": "x"}]})
        assert r.status_code == 422 and "weights add up to 60" in r.json()["error"]["message"], r.text
        assert (await http.get(f"/triggers/{tid}")).json()["version"] == 1
        r = await http.patch(f"/triggers/{tid}", json={"enabled": True, "delay_seconds": 60})
        assert r.status_code == 200, r.text
        assert (r.json()["enabled"], r.json()["version"], r.json()["definition"]["delay_seconds"]) == (True, 2, 60)
        r = await http.post(f"/triggers/{tid}/duplicate")
        assert r.status_code == 201 and r.json()["name"].endswith("(copy)") and r.json()["enabled"] is False
        copy = r.json()["id"]
        assert (await http.delete(f"/triggers/{copy}")).status_code == 200
        assert (await http.get(f"/triggers/{copy}")).status_code == 404
        assert copy not in [t["id"] for t in (await http.get("/triggers")).json()["items"]]
        assert (await http.get(f"/triggers/{2**63 - 1}")).status_code == 404

        v, _ = await visitor(server)
        await v.send(type="message.send", client_msg_id=uuid.uuid4().hex, text="hello")
        contact_id = (await v.expect("message", kind="text"))["message"]["author"]["id"]
        await v.close()
        r = await http.post("/triggers/preview", json={"text": "Hi {{ contact.name | default: 'there' }}",
                                                       "contact_id": contact_id})
        assert r.json() == {"text": "Hi there"}, r.text
        r = await http.post("/triggers/preview", json={"text": "{{ 5 | divided_by: 0 }}", "contact_id": contact_id})
        assert r.status_code == 422 and "divided_by" in r.json()["error"]["message"], r.text
        r = await http.get(f"/triggers/{tid}/explain", params={"contact_id": str(contact_id)})
        assert r.status_code == 200, r.text
        assert any(f.startswith("when:") for f in r.json()["failing"])  # no pricing views yet
        r = await http.post(f"/triggers/{tid}/dry-run", json={"days": 7})
        assert r.status_code == 200 and r.json()["supported"] is True, r.text
        await http.delete(f"/triggers/{tid}")


async def test_the_message_reaches_the_visitor_socket_once(server: ChatServer) -> None:
    admin = await login(server)
    async with api(server, admin) as http:
        me = (await http.get("/me")).json()
        r = await http.post("/triggers", json=body(sender={"operator_id": me["id"], "bot_name": "Bot"}))
        assert r.status_code == 201, r.text
        tid = r.json()["id"]
        key = (await http.post("/api-keys", json={"name": f"backend {tid}"})).json()["secret"]
    try:
        v, _ = await visitor(server)
        await v.send(type="message.send", client_msg_id=uuid.uuid4().hex, text="just looking")
        contact_id = (await v.expect("message", kind="text"))["message"]["author"]["id"]
        for n in range(3):
            await v.send(type="track", name="page_viewed", url=f"https://shop.example/pricing?n={n}", properties={})
        frame = await v.expect("message", kind="automatic", timeout=20)
        assert frame["message"]["text"] == "Hi there!" and frame["message"]["author"]["name"] == me["name"]
        # Three more views, stored before the answer: the limit is once, so nothing more is scheduled.
        async with api(server, key) as backend:
            r = await backend.post("/track", json={"events": [
                {"contact_id": contact_id, "name": "page_viewed", "url": "https://shop.example/pricing"}] * 3})
            assert r.status_code == 200, r.text
        async with api(server, admin) as http:
            explained = (await http.get(f"/triggers/{tid}/explain", params={"contact_id": str(contact_id)})).json()
            assert [s["state"] for s in explained["sends"]] == ["sent"]
            assert "frequency once" in explained["failing"] and explained["last_fired"]["state"] == "sent"
            counted = (await http.get(f"/triggers/{tid}")).json()
            assert (counted["matched"], counted["sent"]) == (1, 1)
            conv = (await http.get(f"/contacts/{contact_id}")).json()["conversation"]["id"]
            items = (await http.get(f"/conversations/{conv}/messages")).json()["items"]
            assert [m["kind"] for m in items].count("automatic") == 1
        await v.close()
    finally:
        async with api(server, admin) as http:
            await http.delete(f"/triggers/{tid}")
