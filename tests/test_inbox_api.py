"""The inbox's REST on a running server (SQLite and PostgreSQL): sales read but never write,
saved replies, search and filters, card edits, CSV export, reports."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import statistics
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chat_server.db import Database
from chat_server.models import Contact, Conversation, Event, Message
from tests.harness import ChatServer, api, create_operator, login, operator, visitor

pytestmark = pytest.mark.anyio


def cid() -> str:
    return uuid.uuid4().hex


async def new_conversation(server: ChatServer, text: str, **hello: object) -> tuple[int, int, object]:
    v, _ = await visitor(server, **hello)
    await v.send(type="message.send", client_msg_id=cid(), text=text)
    ack = await v.expect("ack")
    own = [f for f in v.seen if f["type"] == "message" and f["message"]["seq"] == ack["seq"]]
    contact_id = (own[0] if own else await v.expect("message", seq=ack["seq"]))["message"]["author"]["id"]
    token = await login(server)
    async with api(server, token) as http:
        card = (await http.get(f"/contacts/{contact_id}")).json()
    return card["conversation"]["id"], contact_id, v


async def test_sales_read_everything_and_write_nothing(server: ChatServer) -> None:
    conversation_id, contact_id, v = await new_conversation(server, "I want to buy")
    admin = await login(server)
    sales = await create_operator(server, admin, f"sales-{cid()[:8]}@example.com", role="sales")
    async with api(server, sales) as http:
        assert (await http.get("/conversations")).status_code == 200
        assert (await http.get(f"/conversations/{conversation_id}/messages")).json()["items"][0]["text"] == "I want to buy"
        assert (await http.get(f"/contacts/{contact_id}")).status_code == 200
        assert (await http.get(f"/contacts/{contact_id}/events")).status_code == 200
        assert (await http.post("/contacts/search", json={})).status_code == 200
        refused = [
            await http.post(f"/conversations/{conversation_id}/messages", json={"text": "a reply"}),
            await http.post(f"/conversations/{conversation_id}/notes", json={"text": "a note"}),
            await http.post(f"/conversations/{conversation_id}/assign", json={"assignee_id": None}),
            await http.post(f"/conversations/{conversation_id}/status", json={"status": "closed"}),
            await http.post(f"/conversations/{conversation_id}/tags", json={"tags": ["x"]}),
            await http.post(f"/conversations/{conversation_id}/read", json={"seq": 1}),
            await http.patch(f"/contacts/{contact_id}", json={"name": "Changed"}),
            await http.post(f"/contacts/{contact_id}/merge", json={"other_contact_id": contact_id, "reason": "x"}),
            await http.post("/saved-replies", json={"shortcut": "hi", "text": "Hello"}),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused), [r.text for r in refused]
        assert {r.json()["error"]["code"] for r in refused} <= {"read_only", "admin_only"}
        after = (await http.get(f"/conversations/{conversation_id}/messages")).json()["items"]
    assert [m["text"] for m in after] == ["I want to buy"]  # nothing changed
    # Nor over the socket.
    sock = await operator(server, sales)
    await sock.send(type="message.send", conversation_id=conversation_id, client_msg_id="s-1", text="sneaky")
    err = await sock.expect("error")
    assert err["code"] == "read_only"
    assert not [f for f in await v.settled() if f["type"] == "message"]
    await sock.close()
    await v.close()


async def test_saved_replies(server: ChatServer) -> None:
    admin = await login(server)
    agent = await create_operator(server, admin, f"agent-{cid()[:8]}@example.com")
    short = "price" + cid()[:6]
    async with api(server, admin) as http:
        r = await http.post("/saved-replies", json={"shortcut": "/" + short.upper(), "text": "Our prices: <b>low</b>"})
        assert r.status_code == 201, r.text
        reply = r.json()
        assert reply["shortcut"] == short
        assert (await http.post("/saved-replies", json={"shortcut": short, "text": "again"})).status_code == 409
        assert (await http.post("/saved-replies", json={"shortcut": "two words", "text": "x"})).status_code == 400
        assert (await http.post("/saved-replies", json={"shortcut": "ok", "text": "   "})).status_code == 400
        r = await http.patch(f"/saved-replies/{reply['id']}", json={"text": "New prices"})
        assert r.status_code == 200 and r.json()["text"] == "New prices"
        assert (await http.patch("/saved-replies/999999", json={"text": "x"})).status_code == 404
    async with api(server, agent) as http:
        items = (await http.get("/saved-replies")).json()["items"]
        assert any(i["shortcut"] == short and i["text"] == "New prices" for i in items)
        assert (await http.delete(f"/saved-replies/{reply['id']}")).status_code == 403
    async with api(server, admin) as http:
        assert (await http.delete(f"/saved-replies/{reply['id']}")).status_code == 200
        assert not any(i["id"] == reply["id"] for i in (await http.get("/saved-replies")).json()["items"])


async def test_conversation_search_and_filters(server: ChatServer) -> None:
    word = "zebra" + cid()[:6]
    conv_a, contact_a, va = await new_conversation(server, f"Do you sell {word.upper()} stripes?")
    conv_b, contact_b, vb = await new_conversation(server, "something else")
    admin = await login(server)
    async with api(server, admin) as http:
        await http.patch(f"/contacts/{contact_b}", json={"name": f"Mr {word}", "phone": "+1 555 0100"})
        found = {c["id"] for c in (await http.get("/conversations", params={"q": word})).json()["items"]}
        assert found == {conv_a, conv_b}
        by_phone = (await http.get("/conversations", params={"q": "555 0100"})).json()["items"]
        assert conv_b in {c["id"] for c in by_phone} and conv_a not in {c["id"] for c in by_phone}
        assert (await http.get("/conversations", params={"q": "100%_"})).json()["items"] == []
        me = (await http.get("/me")).json()["id"]
        await http.post(f"/conversations/{conv_a}/assign", json={"assignee_id": me})
        mine = {c["id"] for c in (await http.get("/conversations", params={"assignee": "me", "q": word})).json()["items"]}
        assert mine == {conv_a}
        unassigned = (await http.get("/conversations", params={"assignee": "none", "q": word})).json()["items"]
        assert {c["id"] for c in unassigned} == {conv_b}
        until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        await http.post(f"/conversations/{conv_b}/status", json={"status": "snoozed", "snoozed_until": until})
        snoozed = (await http.get("/conversations", params={"status": "snoozed", "q": word})).json()["items"]
        assert [c["id"] for c in snoozed] == [conv_b]
        await http.post(f"/conversations/{conv_a}/tags", json={"tags": [word]})
        tagged = (await http.get("/conversations", params={"tag": word})).json()["items"]
        assert [c["id"] for c in tagged] == [conv_a]
        widget = (await http.get("/conversations", params={"channel": "widget", "q": word})).json()["items"]
        assert len(widget) == 2
        assert (await http.get("/conversations", params={"channel": "vk", "q": word})).json()["items"] == []
    await va.close()
    await vb.close()


async def test_card_edits_and_event_timeline(server: ChatServer) -> None:
    conversation_id, contact_id, v = await new_conversation(
        server, "hi", page={"url": "https://shop.example/?utm_source=news&utm_medium=email", "referrer": "https://t.co/"})
    await v.send(type="track", name="Page viewed", properties={}, url="https://shop.example/pricing")
    await v.send(type="track", name="Added to cart", properties={"amount": 100})
    admin = await login(server)
    inbox = await operator(server, admin)
    async with api(server, admin) as http:
        for _ in range(50):
            events = (await http.get(f"/contacts/{contact_id}/events")).json()
            if len(events["items"]) >= 2:
                break
            await asyncio.sleep(0.05)
        assert {"Page viewed", "Added to cart"} <= set(events["names"])
        only = (await http.get(f"/contacts/{contact_id}/events", params={"name": "Added to cart"})).json()["items"]
        assert [e["properties"] for e in only] == [{"amount": 100}]
        r = await http.patch(f"/contacts/{contact_id}", json={"name": "Ann <b>", "email": "Ann@Example.com",
                                                               "properties": {"plan": "pro", "seats": 3}})
        assert r.status_code == 200, r.text
        assert r.json()["email"] == "ann@example.com" and r.json()["properties"] == {"plan": "pro", "seats": 3}
        r = await http.patch(f"/contacts/{contact_id}", json={"properties": {"seats": None}})
        assert r.json()["properties"] == {"plan": "pro"} and r.json()["name"] == "Ann <b>"
        assert (await http.patch(f"/contacts/{contact_id}", json={"email": "not-an-email"})).status_code == 400
        assert (await http.patch(f"/contacts/{contact_id}", json={"name": "x" * 201})).status_code == 422
        assert (await http.patch("/contacts/99999999", json={"name": "x"})).status_code == 404
        card = (await http.get(f"/contacts/{contact_id}")).json()
        assert card["contact"]["first_utm"] == {"source": "news", "medium": "email"}
        assert card["identities"][0]["linked_reason"] == "first visit"
    updated = await inbox.expect("conversation.updated", timeout=5)
    while updated["conversation"]["id"] != conversation_id:
        updated = await inbox.expect("conversation.updated", timeout=5)
    assert updated["conversation"]["contact"]["name"] == "Ann <b>"

    from tests.seed import append_messages

    await append_messages(server.database_url, conversation_id, [
        {"channel": "widget", "direction": "outbound", "kind": "automatic", "author_type": "bot",
         "text": "Need help with pricing?"},
        {"channel": "widget", "direction": "inbound", "author_type": "contact", "text": "Yes, for 10 seats"},
        {"channel": "widget", "direction": "outbound", "kind": "automatic", "author_type": "bot", "text": "Still there?"},
    ])
    async with api(server, admin) as http:
        proactive = (await http.get(f"/contacts/{contact_id}/proactive")).json()["items"]
    assert [(p["text"], p["reply_text"]) for p in proactive] == [("Need help with pricing?", "Yes, for 10 seats"),
                                                                 ("Still there?", None)]
    await inbox.close()
    await v.close()


async def test_contacts_filter_and_csv_export(server: ChatServer) -> None:
    batch = cid()[:10]
    now = datetime.now(UTC)
    db = Database(server.database_url)
    wanted: list[int] = []
    try:
        async with db.write() as s:
            for i, (email, pricing_views) in enumerate([("=cmd@example.com", 2), ("b@example.com", 1), (None, 3),
                                                         ("d@example.com", 3), ("", 2)]):
                c = Contact(name=f"{batch}-{i}", email=email, properties={"batch": batch})
                s.add(c)
                await s.flush()
                assert c.id is not None
                for k in range(pricing_views):
                    s.add(Event(contact_id=c.id, name="Page viewed", url=f"https://shop.example/pricing?{k}",
                                occurred_at=now - timedelta(hours=k)))
                s.add(Event(contact_id=c.id, name="Page viewed", url="https://shop.example/about"))
                if email and pricing_views >= 2:
                    wanted.append(c.id)
    finally:
        await db.dispose()
    flt = {"all": [{"kind": "property", "key": "batch", "op": "eq", "value": batch},
                   {"kind": "field", "field": "email", "op": "is_set"},
                   {"kind": "event", "name": "Page viewed", "url_contains": "/pricing", "count": 2}]}
    sales = await create_operator(server, await login(server), f"rep-{batch}@example.com", role="sales")
    async with api(server, sales) as http:
        r = await http.post("/contacts/search", json={"filter": flt, "limit": 1})
        assert r.status_code == 200, r.text
        first = r.json()
        second = (await http.post("/contacts/search", json={"filter": flt, "cursor": int(first["next_cursor"])})).json()
        assert sorted(c["id"] for c in first["items"] + second["items"]) == sorted(wanted)
        r = await http.post("/contacts/export", json={"filter": flt, "columns": ["id", "email", "property:batch"]})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == ["id", "email", "property:batch"]
        assert sorted(int(row[0]) for row in rows[1:]) == sorted(wanted)
        # A cell a spreadsheet would run as a formula is defused.
        assert "'=cmd@example.com" in {row[1] for row in rows[1:]}
        bad = await http.post("/contacts/export", json={"filter": flt, "columns": ["password_hash"]})
        assert bad.status_code == 422
        bad = await http.post("/contacts/search", json={"filter": {"all": [{"kind": "property", "key": "x", "op": "gt",
                                                                           "value": "abc"}]}})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_body"


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(q * len(ordered)) - 1]


async def test_report_numbers_match_the_seed(server: ChatServer) -> None:
    admin = await login(server)
    second = await create_operator(server, admin, f"second-{cid()[:8]}@example.com", name="Second")
    async with api(server, admin) as http:
        admin_id = (await http.get("/me")).json()["id"]
    async with api(server, second) as http:
        second_id = (await http.get("/me")).json()["id"]
    day = datetime(2021, 3, 4, tzinfo=UTC)
    # Per conversation: (inbound minute, [(reply minute, operator)], close minute or None, closer)
    seed = [
        (0, [(5, admin_id)], 30, admin_id),
        (60, [(72, second_id), (80, admin_id)], None, None),
        (120, [(121, admin_id)], 200, second_id),
        (300, [], None, None),  # unanswered
        (600, [(645, second_id)], 700, second_id),
    ]
    db = Database(server.database_url)
    try:
        async with db.write() as s:
            for i, (start, replies, close, closer) in enumerate(seed):
                contact = Contact(name=f"report-{i}")
                s.add(contact)
                await s.flush()
                conv = Conversation(contact_id=contact.id or 0)
                s.add(conv)
                await s.flush()
                lines = [(start, "inbound", "text", "contact", None, "widget", None),
                         (start - 1, "outbound", "automatic", "bot", None, "widget", None),  # before: ignored
                         (start + 1, "inbound", "text", "contact", None, "telegram" if i % 2 else "widget", None),
                         (start + 2, "internal", "note", "operator", admin_id, "internal", None)]
                lines += [(m, "outbound", "text", "operator", op, "widget", None) for m, op in replies]
                if close is not None:
                    lines.append((close, "internal", "system", "operator", closer, "internal", "closed"))
                for seq, (minute, direction, kind, author, author_id, channel, event) in enumerate(sorted(lines), 1):
                    s.add(Message(conversation_id=conv.id or 0, seq=seq, channel=channel, direction=direction, kind=kind,
                                  author_type=author, author_id=author_id, text="x", system_event=event,
                                  created_at=day + timedelta(minutes=minute)))
                conv.last_seq = len(lines)
    finally:
        await db.dispose()
    frt = [60.0 * (replies[0][0] - start) for start, replies, _, _ in seed if replies]
    resolution = [60.0 * (close - start) for start, _, close, _ in seed if close is not None]
    async with api(server, admin) as http:
        r = await http.get("/reports", params={"start": "2021-03-04", "end": "2021-03-05"})
        assert r.status_code == 200, r.text
        report = r.json()
        assert (await http.get("/reports", params={"start": "2021-03-05", "end": "2021-03-04"})).status_code == 400
        assert (await http.get("/reports", params={"start": "yesterday"})).status_code == 422
    assert report["cycles"] == 5 and report["unanswered"] == 1
    assert report["first_response"] == {"count": 4, "median_seconds": statistics.median(frt),
                                         "p90_seconds": nearest_rank(frt, 0.9)}
    assert report["resolution"] == {"count": 3, "median_seconds": statistics.median(resolution),
                                    "p90_seconds": nearest_rank(resolution, 0.9)}
    per = {o["operator_id"]: o for o in report["operators"]}
    assert per[admin_id]["first_response"]["count"] == 2 and per[second_id]["first_response"]["count"] == 2
    assert per[second_id]["first_response"]["median_seconds"] == statistics.median([12 * 60.0, 45 * 60.0])
    assert per[second_id]["resolution"]["count"] == 2 and per[admin_id]["resolution"]["median_seconds"] == 30 * 60.0
    assert report["volume"] == [{"day": "2021-03-04", "channels": {"telegram": 2, "widget": 5}},
                                {"day": "2021-03-05", "channels": {}}]


async def test_text_the_database_cannot_take_is_refused_not_failed(server: ChatServer) -> None:
    admin = await login(server)
    async with api(server, admin) as http:
        for params in ({"q": "a\x00b"}, {"tag": "\x00"}):
            r = await http.get("/conversations", params=params)
            assert r.status_code == 422, r.text
        assert (await http.get("/contacts", params={"q": "\x00"})).status_code == 422
        bodies = [
            '{"q": "\\u0000"}',
            '{"filter": {"all": [{"kind": "event", "name": "\\ud800"}]}}',
            '{"filter": {"all": [{"kind": "property", "key": "\\ud800", "op": "is_set"}]}}',
            '{"filter": {"all": [{"kind": "field", "field": "email", "op": "eq", "value": "a\\u0000"}]}}',
        ]
        for body in bodies:
            r = await http.post("/contacts/search", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 422, (body, r.text)
        assert (await http.get("/reports", params={"start": "0001-01-01", "end": "0001-01-02"})).status_code == 422
        assert (await http.get("/reports", params={"end": "9999-12-31"})).status_code == 422
        r = await http.patch("/contacts/1", content='{"email": "\\ud800@example.com"}',
                             headers={"content-type": "application/json"})
        assert r.status_code in (400, 404, 422), r.text


async def test_the_inbox_page_is_served_with_a_strict_content_policy(server: ChatServer) -> None:
    async with api(server) as http:
        r = await http.get(server.http + "/inbox/")
        assert r.status_code == 200 and '<script type="module" src="js/app.js">' in r.text
        policy = r.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert r.headers["x-content-type-options"] == "nosniff"
        r = await http.get(server.http + "/inbox/js/app.js")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
        assert (await http.get(server.http + "/inbox/nope.js")).status_code == 404
        r = await http.get(server.http + "/inbox", follow_redirects=True)
        assert r.status_code == 200 and str(r.url).endswith("/inbox/")


async def test_each_operator_chooses_the_inbox_language_for_themself(server: ChatServer) -> None:
    admin = await login(server)
    sales = await create_operator(server, admin, f"lang-{cid()[:8]}@example.com", role="sales")
    async with api(server, sales) as http:
        me = (await http.get("/me")).json()
        assert me["language"] is None  # follows the browser until chosen
        r = await http.patch("/me", json={"language": "ru"})
        assert r.status_code == 200, r.text
        assert r.json()["language"] == "ru" and r.json()["id"] == me["id"]
        assert (await http.get("/me")).json()["language"] == "ru"
        # Refused with a clear error, and nothing changes.
        for body in ({"language": "fr"}, {"language": "RU"}, {"language": 1}, {"language": "ru", "role": "admin"}):
            r = await http.patch("/me", json=body)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["error"]["code"] == "invalid_body"
        assert (await http.get("/me")).json()["language"] == "ru"
        assert (await http.get("/me")).json()["role"] == "sales"
        # A body without the field leaves it; null goes back to following the browser.
        assert (await http.patch("/me", json={})).json()["language"] == "ru"
        assert (await http.patch("/me", json={"language": None})).json()["language"] is None
        assert (await http.get("/me")).json()["language"] is None
        await http.patch("/me", json={"language": "en"})
    async with api(server, admin) as http:
        # One operator's choice is theirs alone.
        assert (await http.get("/me")).json()["language"] is None
        assert "language" not in (await http.get("/operators")).json()["items"][0]
    async with api(server) as http:
        assert (await http.patch("/me", json={"language": "ru"})).status_code == 401


def test_the_language_check_refuses_what_the_inbox_has_no_catalogue_for() -> None:
    from chat_server.actions.errors import ActionError
    from chat_server.actions.operators import check_language

    assert [check_language(v) for v in ("en", "ru", None)] == ["en", "ru", None]
    with pytest.raises(ActionError) as refused:
        check_language("de")
    assert refused.value.code == "invalid_language"
