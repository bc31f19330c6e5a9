"""Close, reopen, snooze, tags and the inbox list's filters, over the REST API on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.harness import ChatServer, api, create_operator, login, visitor
from tests.test_realtime import start_conversation

pytestmark = pytest.mark.anyio


async def test_snooze_then_a_new_message_reopens_with_system_lines(server: ChatServer) -> None:
    v, _, conversation_id = await start_conversation(server, "need help")
    token = await login(server)
    async with api(server, token) as http:
        until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        r = await http.post(f"/conversations/{conversation_id}/status", json={"status": "snoozed", "snoozed_until": until})
        assert r.status_code == 200 and r.json()["status"] == "snoozed"
        r = await http.post(f"/conversations/{conversation_id}/status", json={"status": "closed", "snoozed_until": until})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_snooze"
        assert (await http.get(f"/conversations/{conversation_id}")).json()["status"] == "snoozed"  # unchanged

        await v.send(type="message.send", client_msg_id=uuid.uuid4().hex, text="still there?")
        await v.expect("ack")
        conv = (await http.get(f"/conversations/{conversation_id}")).json()
        assert conv["status"] == "open" and conv["snoozed_until"] is None

        r = await http.post(f"/conversations/{conversation_id}/status", json={"status": "closed"})
        assert r.json()["status"] == "closed"
        r = await http.post(f"/conversations/{conversation_id}/status", json={"status": "open"})
        assert r.json()["status"] == "open"
        history = (await http.get(f"/conversations/{conversation_id}/messages")).json()["items"]
    system = [m["text"] for m in history if m["kind"] == "system"]
    assert any("snoozed the conversation until" in t for t in system)
    assert any("closed the conversation" in t for t in system) and any("reopened" in t for t in system)
    # The visitor never sees system lines.
    assert not [f for f in v.seen + await v.settled() if f["type"] == "message" and "conversation" in f["message"]["text"]]
    await v.close()


async def test_inbox_filters_and_cursor_pages(server: ChatServer) -> None:
    token = await login(server)
    me = await create_operator(server, token, f"filters-{uuid.uuid4().hex[:6]}@example.com")
    made: list[int] = []
    for i in range(5):
        v, _, conversation_id = await start_conversation(server, f"filter test {i}")
        made.append(conversation_id)
        await v.close()
    tag = f"t{uuid.uuid4().hex[:8]}"
    async with api(server, me) as http:
        mine_id = (await http.get("/me")).json()["id"]
        await http.post(f"/conversations/{made[0]}/assign", json={"assignee_id": mine_id})
        await http.post(f"/conversations/{made[1]}/tags", json={"tags": [tag, "vip"]})
        await http.post(f"/conversations/{made[2]}/status", json={"status": "closed"})
        await http.post(f"/conversations/{made[3]}/read", json={"seq": 1})

        async def ids(**params: str) -> list[int]:
            r = await http.get("/conversations", params={"limit": "200", **params})
            assert r.status_code == 200, r.text
            return [c["id"] for c in r.json()["items"]]

        assert made[0] in await ids(assignee="me")
        assert made[0] not in await ids(assignee="none") and made[1] in await ids(assignee="none")
        assert await ids(tag=tag) == [made[1]]
        assert made[2] in await ids(status="closed") and made[2] not in await ids(status="open")
        assert made[3] in await ids(unread="false") and made[3] not in await ids(unread="true")
        assert made[4] in await ids(unread="true") and made[4] in await ids(channel="widget")
        assert made[4] not in await ids(channel="telegram")

        # Pages of two walk the whole list by last activity, each conversation once.
        everything = await ids()
        walked: list[int] = []
        activity: list[str] = []
        cursor: str | None = None
        while True:
            page = (await http.get("/conversations", params={"limit": "2", **({"cursor": cursor} if cursor else {})})).json()
            walked += [c["id"] for c in page["items"]]
            activity += [c["last_activity_at"] for c in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert walked == everything and len(set(walked)) == len(walked)
        stamps = [datetime.fromisoformat(a) for a in activity]
        assert stamps == sorted(stamps, reverse=True)  # newest activity first


async def test_reply_goes_out_on_a_channel_the_contact_has(server: ChatServer) -> None:
    v, _, conversation_id = await start_conversation(server, "hi from the site")
    token = await login(server)
    async with api(server, token) as http:
        r = await http.post(f"/conversations/{conversation_id}/messages", json={"text": "answer"})
        assert r.status_code == 201 and r.json()["message"]["channel"] == "widget"
        r = await http.post(f"/conversations/{conversation_id}/messages", json={"text": "by mail?", "channel": "email"})
        assert r.status_code == 400 and r.json()["error"]["code"]
        history = (await http.get(f"/conversations/{conversation_id}/messages")).json()["items"]
    assert [m["text"] for m in history if m["kind"] == "text"].count("by mail?") == 0  # refused: nothing stored
    await v.close()


async def test_visitor_message_rate_limit(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("limited")
    chat = ChatServer(tmp, f"sqlite+aiosqlite:///{tmp / 'chat.db'}", CHAT_VISITOR_MESSAGES_PER_MINUTE="3")
    chat.start()
    try:
        v, welcome = await visitor(chat)
        for i in range(4):
            await v.send(type="message.send", client_msg_id=f"m{i}", text=f"spam {i}")
        acks = [await v.expect("ack") for _ in range(3)]
        limited = await v.expect("error")
        assert limited["code"] == "rate_limited" and [a["seq"] for a in acks] == [1, 2, 3]
        await v.close()
        again, back = await visitor(chat, token=welcome["token"])
        assert back["conversation"]["last_seq"] == 3  # the refused message was not stored
        await again.close()
    finally:
        chat.stop()
