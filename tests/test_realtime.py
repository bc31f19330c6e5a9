"""Visitor <-> operator over real sockets, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.harness import ChatServer, api, create_operator, login, operator, visitor

pytestmark = pytest.mark.anyio


def cid() -> str:
    return uuid.uuid4().hex


async def start_conversation(server: ChatServer, text: str = "hello") -> tuple[object, dict, int]:
    v, welcome = await visitor(server)
    await v.send(type="message.send", client_msg_id=cid(), text=text)
    ack = await v.expect("ack")
    token = await login(server)
    async with api(server, token) as http:
        r = await http.get("/conversations", params={"limit": "200"})
        own = [f for f in v.seen if f["type"] == "message" and f["message"]["seq"] == ack["seq"]]
        contact_id = (own[0] if own else await v.expect("message", seq=ack["seq"]))["message"]["author"]["id"]
        conv = next(c for c in r.json()["items"] if c["contact"]["id"] == contact_id)
    return v, welcome, conv["id"]


async def test_visitor_and_operator_talk_both_ways(server: ChatServer) -> None:
    token = await login(server)
    op = await operator(server, token)
    v, welcome = await visitor(server, page={"url": "https://shop.example/pricing?utm_source=ads&utm_campaign=x"})
    assert welcome["conversation"]["last_seq"] == 0 and welcome["token"]

    await v.send(type="message.send", client_msg_id="m-1", text="Здравствуйте 👋 <img src=x onerror=alert(1)>")
    ack = await v.expect("ack", client_msg_id="m-1")
    assert ack["seq"] == 1 and ack["duplicate"] is False
    created = await op.expect("conversation.updated")
    conversation_id = created["conversation"]["id"]
    got = await op.expect("message", conversation_id=conversation_id)
    assert got["message"]["text"] == "Здравствуйте 👋 <img src=x onerror=alert(1)>"  # stored exactly as typed
    assert got["message"]["channel"] == "widget" and got["message"]["direction"] == "inbound"

    async with api(server, token) as http:
        card = (await http.get(f"/contacts/{created['conversation']['contact']['id']}")).json()
    assert card["contact"]["first_utm"] == {"source": "ads", "campaign": "x"}
    assert card["contact"]["first_landing_page"].endswith("/pricing?utm_source=ads&utm_campaign=x")

    await op.send(type="typing", conversation_id=conversation_id, is_typing=True)
    typing = await v.expect("typing")
    assert typing["author"] == {"type": "operator", "id": None, "name": "Admin"}
    await op.send(type="message.send", conversation_id=conversation_id, client_msg_id="r-1", text="Hi, how can I help?")
    reply = await v.expect("message", seq=2)
    assert reply["message"]["author"]["name"] == "Admin" and reply["message"]["direction"] == "outbound"
    assert (await v.expect("receipt"))["reader"] == "operator"
    await op.expect("ack", client_msg_id="r-1")

    await v.send(type="typing", is_typing=True)
    assert (await op.expect("typing", conversation_id=conversation_id))["author"]["type"] == "contact"
    await v.send(type="receipt", state="read", seq=2)
    receipt = await op.expect("receipt", conversation_id=conversation_id, reader="contact")
    assert receipt["seq"] == 2 and receipt["state"] == "read"
    await v.close()
    await op.close()


async def test_private_note_never_reaches_the_visitor(server: ChatServer) -> None:
    v, _, conversation_id = await start_conversation(server)
    token = await login(server)
    async with api(server, token) as http:
        r = await http.post(f"/conversations/{conversation_id}/notes", json={"text": "secret: VIP customer"})
        assert r.status_code == 201
        assert r.json()["message"]["kind"] == "note"
        r = await http.post(f"/conversations/{conversation_id}/messages", json={"text": "public answer"})
        assert r.status_code == 201
    reply = await v.expect("message", text="public answer")
    assert reply["message"]["seq"] == 2  # the note took no place in the visitor's numbering
    frames = v.seen + await v.settled()
    assert not any("secret" in str(f) for f in frames)
    # Nor on resume from the start.
    v2, _ = await visitor(server, token=(v.seen[0] if v.seen[0]["type"] == "welcome" else {}).get("token"))
    await v.close()
    await v2.close()


async def test_resend_with_same_client_id_is_stored_once(server: ChatServer) -> None:
    v, welcome = await visitor(server)
    for _ in range(3):
        await v.send(type="message.send", client_msg_id="same-id", text="only once")
    acks = [await v.expect("ack") for _ in range(3)]
    assert [a["duplicate"] for a in acks] == [False, True, True]
    assert len({a["message_id"] for a in acks}) == 1
    await v.close()
    # A reconnect (same token) that resends it again is acknowledged with the same message.
    v2, welcome2 = await visitor(server, token=welcome["token"], last_seq=1)
    await v2.send(type="message.send", client_msg_id="same-id", text="only once")
    ack = await v2.expect("ack")
    assert ack["duplicate"] is True and ack["message_id"] == acks[0]["message_id"]
    assert welcome2["conversation"]["last_seq"] == 1
    await v2.close()


async def test_resume_after_dropped_connection_has_no_gap_and_no_duplicate(server: ChatServer) -> None:
    v, welcome, conversation_id = await start_conversation(server, "first")
    token = await login(server)
    async with api(server, token) as http:
        await http.post(f"/conversations/{conversation_id}/messages", json={"text": "reply 1"})
        await v.expect("message", seq=2)
        await v.close()  # the visitor drops; the operator keeps writing
        for i in range(2, 6):
            r = await http.post(f"/conversations/{conversation_id}/messages", json={"text": f"reply {i}"})
            assert r.status_code == 201
    v2, welcome2 = await visitor(server, token=welcome["token"], last_seq=2)
    got = [await v2.expect("message") for _ in range(4)]
    assert [m["message"]["seq"] for m in got] == [3, 4, 5, 6]
    assert [m["message"]["text"] for m in got] == ["reply 2", "reply 3", "reply 4", "reply 5"]
    assert not [f for f in await v2.settled() if f["type"] == "message"]
    await v2.close()


async def test_operator_resume_by_cursor(server: ChatServer) -> None:
    v, _, conversation_id = await start_conversation(server, "one")
    token = await login(server)
    await v.send(type="message.send", client_msg_id=cid(), text="two")
    await v.send(type="message.send", client_msg_id=cid(), text="three")
    await v.expect("ack")
    await v.expect("ack")
    op = await operator(server, token, cursors={conversation_id: {"seq": 1, "epoch": 1}})
    got = [await op.expect("message", conversation_id=conversation_id) for _ in range(2)]
    assert [m["message"]["text"] for m in got] == ["two", "three"]
    await v.send(type="message.send", client_msg_id=cid(), text="four")
    live = await op.expect("message", conversation_id=conversation_id)
    assert live["message"]["seq"] == 4
    await op.close()
    await v.close()


async def test_visitor_cannot_read_another_visitors_conversation(server: ChatServer) -> None:
    a, a_welcome, _ = await start_conversation(server, "A's secret")
    forged = a_welcome["token"][:-3] + ("aaa" if not a_welcome["token"].endswith("aaa") else "bbb")
    b, b_welcome = await visitor(server, token=forged)
    assert b_welcome["visitor_id"] != a_welcome["visitor_id"]
    assert b_welcome["conversation"]["last_seq"] == 0
    await b.send(type="message.send", client_msg_id=cid(), text="B writes")
    await b.expect("ack")
    frames = b.seen + await b.settled()
    assert not any("A's secret" in str(f) for f in frames)
    a_frames = await a.settled()
    assert not any("B writes" in str(f) for f in a_frames)
    await a.close()
    await b.close()


async def test_operator_socket_and_api_refuse_bad_tokens(server: ChatServer) -> None:
    import websockets

    ws = await websockets.connect(server.ws + "/ws/inbox")
    await ws.send('{"type": "hello", "token": "not-a-token"}')
    frame = __import__("json").loads(await ws.recv())
    assert frame["type"] == "error" and frame["code"] == "unauthorized"
    try:
        await ws.recv()
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 4401
    async with api(server) as http:
        assert (await http.get("/conversations")).status_code == 401
    async with api(server, "wrong") as http:
        assert (await http.get("/conversations")).status_code == 401


async def test_assignment_is_live_for_other_operators(server: ChatServer) -> None:
    v, _, conversation_id = await start_conversation(server)
    admin = await login(server)
    second = await create_operator(server, admin, f"{cid()}@example.com")
    watcher = await operator(server, second)
    async with api(server, admin) as http:
        me = (await http.get("/me")).json()
        r = await http.post(f"/conversations/{conversation_id}/assign", json={"assignee_id": me["id"]})
        assert r.status_code == 200 and r.json()["assignee_id"] == me["id"]
    update = await watcher.expect("conversation.updated")
    assert update["conversation"]["assignee_id"] == me["id"]
    line = await watcher.expect("message", conversation_id=conversation_id)
    assert line["message"]["kind"] == "system" and "assigned" in line["message"]["text"]
    assert not [f for f in await v.settled() if f["type"] == "message"]  # system lines stay internal
    await watcher.close()
    await v.close()


async def test_merge_moves_the_visitors_socket_to_the_survivors_thread(server: ChatServer) -> None:
    a, a_welcome, a_conv = await start_conversation(server, "from A")
    b, b_welcome, b_conv = await start_conversation(server, "from B")
    token = await login(server)
    op = await operator(server, token, cursors={a_conv: {"seq": 1, "epoch": 1}})
    async with api(server, token) as http:
        a_contact = (await http.get(f"/conversations/{a_conv}")).json()["contact"]["id"]
        b_contact = (await http.get(f"/conversations/{b_conv}")).json()["contact"]["id"]
        r = await http.post(f"/contacts/{a_contact}/merge", json={"other_contact_id": b_contact, "reason": "same person"})
        assert r.status_code == 200, r.text
        card = (await http.get(f"/contacts/{a_contact}")).json()
    assert card["merges"][0]["merged_id"] == b_contact and card["merges"][0]["reason"] == "same person"
    assert len(card["identities"]) == 2
    # B's open widget now shows the one thread, renumbered, from the start.
    reset = await b.expect("reset")
    assert reset["conversation_id"] == a_conv
    got = [await b.expect("message") for _ in range(2)]
    assert [(m["message"]["seq"], m["message"]["text"]) for m in got] == [(1, "from A"), (2, "from B")]
    # The operator holding A's thread is told to reload it; B's conversation is gone.
    assert (await op.expect("reset", conversation_id=a_conv))["epoch"] == 2
    removed = await op.expect("conversation.removed", conversation_id=b_conv)
    assert removed["merged_into_conversation_id"] == a_conv
    # B writes again: it lands in the merged thread, seen by A's widget as well.
    await b.send(type="message.send", client_msg_id=cid(), text="B again")
    assert (await a.expect("message", text="B again"))["message"]["seq"] == 3
    for sock in (a, b, op):
        await sock.close()


async def test_operator_presence_drives_the_widgets_offline_mode(server: ChatServer) -> None:
    admin = await login(server)
    async with api(server, admin) as http:
        operators = (await http.get("/operators")).json()["items"]
        assert all(o["availability"] == "away" for o in operators)  # nobody has gone online yet
    v, welcome = await visitor(server)
    assert welcome["operators_online"] is False
    second = await create_operator(server, admin, f"{cid()}@example.com", name="Nina")
    watcher = await operator(server, admin)
    op = await operator(server, second)
    await op.send(type="presence", availability="online")
    assert (await v.expect("presence"))["operators_online"] is True
    seen = await watcher.expect("presence", availability="online")
    assert seen["operator_id"] != (await http_me(server, admin))["id"]
    await op.send(type="presence", availability="away")
    assert (await v.expect("presence"))["operators_online"] is False
    for sock in (v, watcher, op):
        await sock.close()


async def http_me(server: ChatServer, token: str) -> dict:
    async with api(server, token) as http:
        return (await http.get("/me")).json()  # type: ignore[no-any-return]
