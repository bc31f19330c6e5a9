"""Open sockets lose what their credentials lost: logout, deactivation and a password change
close the operator's inbox sockets (4401), a demotion to sales makes them read-only at once,
and a revoked visitor token closes the widget's sockets — on every process behind Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import websockets
from sqlmodel import col, select, update

from chat_server.db import Database
from chat_server.models import Operator, OperatorSession
from chat_server.models.types import utcnow
from chat_server.realtime.sessions import recheck_sockets
from tests.appserver import AppServer
from tests.harness import ChatServer, Socket, api, create_operator, login, operator, visitor
from tests.services import PostgresServer, RedisServer

pytestmark = pytest.mark.anyio


def cid() -> str:
    return uuid.uuid4().hex


async def close_code(sock: Socket, timeout: float = 5.0) -> int | None:
    """Read until the server closes the socket; its close code."""
    try:
        while True:
            await sock.recv(timeout)
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def try_send(sock: Socket, **frame: Any) -> None:
    """Send if the socket still takes frames (a closing one may already refuse)."""
    try:
        await sock.send(**frame)
    except websockets.ConnectionClosed:
        pass


async def conversation_id_of(server: ChatServer, v: Socket) -> int:
    """The visitor's conversation (started by a message if need be), as operators number it."""
    await v.send(type="message.send", client_msg_id=cid(), text="where am I")
    ack = await v.expect("ack")
    own = [f for f in v.seen if f["type"] == "message" and f["message"]["seq"] == ack["seq"]]
    contact_id = (own[0] if own else await v.expect("message", seq=ack["seq"]))["message"]["author"]["id"]
    async with api(server, await login(server)) as http:
        return int((await http.get(f"/contacts/{contact_id}")).json()["conversation"]["id"])


async def stored_texts(server: ChatServer, conversation_id: int) -> list[str]:
    async with api(server, await login(server)) as http:
        r = await http.get(f"/conversations/{conversation_id}/messages", params={"limit": "200"})
    return [m["text"] for m in r.json()["items"]]


async def test_logout_closes_that_sessions_sockets_only(server: ChatServer) -> None:
    v, _ = await visitor(server)
    conv = await conversation_id_of(server, v)
    admin = await login(server)
    email = f"op-{cid()[:8]}@example.com"
    first = await create_operator(server, admin, email)
    second = await login(server, email, "password-" + email)
    leaving, staying = await operator(server, first), await operator(server, second)

    async with api(server, first) as http:
        assert (await http.post("/auth/logout")).status_code == 200
    await try_send(leaving, type="message.send", conversation_id=conv, client_msg_id=cid(), text="after logout")
    assert await close_code(leaving) == 4401

    # The other session of the same operator goes on, and hears the visitor.
    await v.send(type="message.send", client_msg_id=cid(), text="still there?")
    await staying.expect("message", text="still there?")
    await staying.send(type="message.send", conversation_id=conv, client_msg_id="kept", text="yes")
    await staying.expect("ack", client_msg_id="kept")
    texts = await stored_texts(server, conv)
    assert "yes" in texts and "after logout" not in texts
    await staying.close()
    await v.close()


async def test_deactivation_and_password_change_close_every_socket_of_the_operator(server: ChatServer) -> None:
    v, _ = await visitor(server)
    conv = await conversation_id_of(server, v)
    admin = await login(server)
    for change in ({"is_active": False}, {"password": "a brand new password"}):
        email = f"op-{cid()[:8]}@example.com"
        token = await create_operator(server, admin, email)
        sockets = [await operator(server, token), await operator(server, token)]
        async with api(server, admin) as http:
            me = (await http.get("/operators")).json()["items"]
            operator_id = next(o["id"] for o in me if o["email"] == email)
            assert (await http.patch(f"/operators/{operator_id}", json=change)).status_code == 200
        for sock in sockets:
            await try_send(sock, type="message.send", conversation_id=conv, client_msg_id=cid(), text=f"late {change}")
            assert await close_code(sock) == 4401
        # A new socket with the old token is refused too.
        ws = await websockets.connect(server.ws + "/ws/inbox")
        refused = Socket(ws)
        await refused.send(type="hello", token=token, cursors={})
        assert (await refused.expect("error"))["code"] == "unauthorized"
        assert await close_code(refused) == 4401
        assert not any(t.startswith("late") for t in await stored_texts(server, conv))
    await v.close()


async def test_demotion_to_sales_makes_an_open_socket_read_only_at_once(server: ChatServer) -> None:
    v, _ = await visitor(server)
    conv = await conversation_id_of(server, v)
    admin = await login(server)
    email = f"op-{cid()[:8]}@example.com"
    token = await create_operator(server, admin, email)
    sock = await operator(server, token)
    async with api(server, admin) as http:
        operator_id = next(o["id"] for o in (await http.get("/operators")).json()["items"] if o["email"] == email)
        assert (await http.patch(f"/operators/{operator_id}", json={"role": "sales"})).status_code == 200
    await sock.send(type="message.send", conversation_id=conv, client_msg_id="demoted", text="as sales")
    assert (await sock.expect("error"))["code"] == "read_only"
    await sock.send(type="read", conversation_id=conv, seq=1)
    assert (await sock.expect("error"))["code"] == "read_only"
    # Still a reader: the visitor's news keeps coming.
    await v.send(type="message.send", client_msg_id=cid(), text="sales may read this")
    await sock.expect("message", text="sales may read this")
    async with api(server, admin) as http:
        assert (await http.patch(f"/operators/{operator_id}", json={"role": "operator"})).status_code == 200
    await sock.send(type="message.send", conversation_id=conv, client_msg_id="promoted", text="as operator")
    await sock.expect("ack", client_msg_id="promoted")
    assert "as sales" not in await stored_texts(server, conv)
    await sock.close()
    await v.close()


async def test_revoked_visitor_token_closes_the_widget_and_reads_nothing(server: ChatServer) -> None:
    v, welcome = await visitor(server)
    token = welcome["token"]
    await v.send(type="message.send", client_msg_id=cid(), text="my private question")
    await v.expect("ack")
    other_tab, _ = await visitor(server, token=token)
    headers = {"authorization": f"Visitor {token}"}
    async with api(server) as http:
        assert (await http.get("/widget/channel-links", headers=headers)).status_code == 200
        assert (await http.post("/widget/token/revoke", headers=headers)).status_code == 200
        assert await close_code(v) == 4401 and await close_code(other_tab) == 4401
        assert (await http.get("/widget/channel-links", headers=headers)).status_code == 401
        assert (await http.post("/widget/token/revoke", headers=headers)).status_code == 401
    # Whoever holds the old token starts as someone new, with an empty thread.
    again, fresh = await visitor(server, token=token)
    assert fresh["visitor_id"] != welcome["visitor_id"] and fresh["token"] != token
    assert fresh["conversation"]["last_seq"] == 0
    assert not any(f["type"] == "message" for f in again.seen + await again.settled())
    await again.close()


# --- two processes ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair(postgres: PostgresServer, redis_server: RedisServer,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChatServer, ChatServer]]:
    database_url = postgres.create_database(f"access_{uuid.uuid4().hex[:8]}")
    a = ChatServer(tmp_path_factory.mktemp("access-a"), database_url, redis_url=redis_server.url)
    b = ChatServer(tmp_path_factory.mktemp("access-b"), database_url, redis_url=redis_server.url,
                   CHAT_AUTO_MIGRATE="false")
    a.start()
    try:
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()


async def test_revocations_reach_sockets_on_the_other_process(pair: tuple[ChatServer, ChatServer]) -> None:
    a, b = pair
    v, welcome = await visitor(b)
    conv = await conversation_id_of(a, v)
    admin = await login(a)
    email = f"op-{cid()[:8]}@example.com"
    token = await create_operator(a, admin, email)
    demoted = await operator(b, token)
    logged_out = await operator(b, await login(b, email, "password-" + email))
    async with api(a, admin) as http:
        operator_id = next(o["id"] for o in (await http.get("/operators")).json()["items"] if o["email"] == email)
        assert (await http.patch(f"/operators/{operator_id}", json={"role": "sales"})).status_code == 200

    # Demoted on A, refused on B: the news may take a moment through Redis, so ask until it has.
    for attempt in range(50):
        await demoted.send(type="message.send", conversation_id=conv, client_msg_id=f"try-{attempt}", text="x")
        frame = await _answer(demoted)
        if frame["type"] == "error":
            assert frame["code"] == "read_only"
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the demotion never reached the other process")

    async with api(a, admin) as http:
        assert (await http.patch(f"/operators/{operator_id}", json={"role": "operator"})).status_code == 200
    async with api(a, token) as http:
        assert (await http.post("/auth/logout")).status_code == 200
    assert await close_code(demoted) == 4401  # its session ended on A
    # The other session's socket on B is untouched and writes again as an operator.
    for attempt in range(50):
        await logged_out.send(type="message.send", conversation_id=conv, client_msg_id=f"back-{attempt}", text="ok")
        if (await _answer(logged_out))["type"] == "ack":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the promotion never reached the other process")

    async with api(a) as http:
        headers = {"authorization": f"Visitor {welcome['token']}"}
        assert (await http.post("/widget/token/revoke", headers=headers)).status_code == 200
    assert await close_code(v) == 4401  # revoked on A, closed on B
    await logged_out.close()


async def _answer(sock: Socket) -> dict[str, Any]:
    while True:
        frame = await sock.recv()
        if frame["type"] in ("ack", "error"):
            return frame


# --- what the news missed ---------------------------------------------------------------------

async def test_sockets_are_rechecked_against_the_database(tmp_path: Path) -> None:
    """Sessions that expired, or revocations whose news was lost, are caught by the periodic
    check (run here at once instead of waiting a minute)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    async with AppServer(tmp_path, url) as app:
        sv = app.app.state.sockets
        admin = await login(app)  # type: ignore[arg-type]
        v, _ = await visitor(app)  # type: ignore[arg-type]
        conv = await conversation_id_of(app, v)  # type: ignore[arg-type]
        expiring_email, demoted_email = f"exp-{cid()[:8]}@example.com", f"dem-{cid()[:8]}@example.com"
        expiring = await operator(app, await create_operator(app, admin, expiring_email))  # type: ignore[arg-type]
        demoted = await operator(app, await create_operator(app, admin, demoted_email))  # type: ignore[arg-type]
        staying = await operator(app, admin)  # type: ignore[arg-type]
        db = Database(url)
        try:
            # Changed behind the server's back: no news was published for either.
            async with db.write() as s:
                ids = {o.email: o.id for o in (await s.exec(select(Operator))).all()}
                await s.exec(update(OperatorSession).where(col(OperatorSession.operator_id) == ids[expiring_email])
                             .values(expires_at=utcnow() - timedelta(seconds=1)))
                await s.exec(update(Operator).where(col(Operator.id) == ids[demoted_email]).values(role="sales"))
        finally:
            await db.dispose()
        await recheck_sockets(sv.rt, sv.hub)
        assert await close_code(expiring) == 4401
        await demoted.send(type="message.send", conversation_id=conv, client_msg_id="late", text="as sales")
        assert (await demoted.expect("error"))["code"] == "read_only"
        await staying.send(type="message.send", conversation_id=conv, client_msg_id="ok", text="still here")
        await staying.expect("ack", client_msg_id="ok")
        for sock in (demoted, staying, v):
            await sock.close()
