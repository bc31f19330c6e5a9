"""PostgreSQL goes away under a running server and comes back: what was asked meanwhile fails
clearly, nothing is acknowledged without being stored, and the server recovers by itself."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.harness import ChatServer, api, login, visitor
from tests.resilient_clients import FollowingOperator, ResilientVisitor, until
from tests.services import PostgresServer

pytestmark = pytest.mark.anyio


async def test_requests_during_a_postgres_outage_fail_clearly_and_the_server_recovers(tmp_path: Path) -> None:
    with PostgresServer(tmp_path / "pg") as pg:
        server = ChatServer(tmp_path, pg.create_database("outage"))
        server.start()
        try:
            token = await login(server)
            v, _ = await visitor(server)
            await v.send(type="message.send", client_msg_id="before", text="before the outage")
            await v.expect("ack", client_msg_id="before")

            await anyio.to_thread.run_sync(pg.stop)
            await v.send(type="message.send", client_msg_id="during", text="while the database is down")
            refused = await v.expect("error", timeout=30)
            assert (refused["code"], refused["ref"]) == ("unavailable", "during")
            assert not [f for f in v.seen if f["type"] == "ack" and f["client_msg_id"] == "during"]
            async with api(server, token) as http:
                r = await http.get("/conversations")
                ready = await http.get(server.http + "/readyz")
            assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable", r.text
            assert r.headers["retry-after"] == "5" and ready.status_code == 503

            await anyio.to_thread.run_sync(pg.start)
            # The widget sends again what was not acknowledged, as it does after any error.
            with anyio.fail_after(30):
                while True:
                    await v.send(type="message.send", client_msg_id="during", text="while the database is down")
                    frame = await v.recv(10)
                    if frame["type"] == "ack" and frame["client_msg_id"] == "during":
                        break
                    await anyio.sleep(0.5)
            async with api(server, token) as http:
                conversations = (await http.get("/conversations")).json()["items"]
                thread = (await http.get(f"/conversations/{conversations[0]['id']}/messages")).json()["items"]
            assert [m["text"] for m in thread] == ["before the outage", "while the database is down"]
            await v.close()
        finally:
            server.stop()


async def test_postgres_restarted_under_load_acknowledges_nothing_it_did_not_store(tmp_path: Path) -> None:
    """Two widgets and an operator keep writing while PostgreSQL stops and starts again: what
    was asked meanwhile is refused with `unavailable` (and sent again by the client), nothing
    is acknowledged that is not stored, and the same server process carries on afterwards."""
    with PostgresServer(tmp_path / "pg") as pg:
        server = ChatServer(tmp_path, pg.create_database("outage_load"))
        server.start()
        try:
            token = await login(server)
            # One message in flight each: after a refusal nothing may overtake the refused one.
            widgets = [ResilientVisitor(server, [f"w{w} says {i}" for i in range(15)], window=1, prefix=f"w{w}",
                                        pause=0.05) for w in range(2)]
            inbox = FollowingOperator(server, token, [f"answer {i}" for i in range(8)], pause=0.1)
            total = 2 * 15 + 8
            pid = server.proc.pid if server.proc else None

            async def outage() -> None:
                await until(lambda: sum(len(w.acked) for w in widgets) >= 6 and len(inbox.acked) >= 1, 60)
                await anyio.to_thread.run_sync(pg.stop)
                # Down until every client has been told so at least once (or failed to reconnect).
                await until(lambda: all(w.refused or w.reconnects for w in widgets)
                            and bool(inbox.refused or inbox.closes), 60)
                await anyio.to_thread.run_sync(pg.start)

            with anyio.fail_after(120):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(inbox.run, total)
                    await anyio.sleep(0.2)
                    for w in widgets:
                        tg.start_soon(w.run)
                    tg.start_soon(outage)

            assert server.proc is not None and server.proc.pid == pid and server.proc.poll() is None
            refusals = [f for w in widgets for f in w.refused] + inbox.refused
            assert refusals, "nothing was asked while the database was down"
            assert {f["code"] for f in refusals} == {"unavailable"}, refusals
            async with api(server, token) as http:
                stored = {}
                for c in (await http.get("/conversations")).json()["items"]:
                    r = await http.get(f"/conversations/{c['id']}/messages", params={"limit": "200"})
                    stored[c["id"]] = r.json()["items"]
            assert sum(len(t) for t in stored.values()) == total
            for w in widgets:
                [thread] = [t for t in stored.values() if t[0]["client_msg_id"] == w.outbox[0][0]]
                mine = [m for m in thread if m["direction"] == "inbound"]
                assert [m["client_msg_id"] for m in mine] == [cid for cid, _ in w.outbox]
                assert [m["id"] for m in mine] == [w.acked[cid] for cid, _ in w.outbox]
                assert [m["id"] for m in w.shown] == [m["id"] for m in thread][:len(w.shown)]
            for cid, _ in inbox.replies:
                [m] = [m for t in stored.values() for m in t if m["client_msg_id"] == cid]
                assert (m["conversation_id"], m["id"]) == (inbox.reply_to[cid], inbox.acked[cid])
            assert {c: [m["id"] for m in t] for c, t in inbox.threads.items()} == \
                {c: [m["id"] for m in t] for c, t in stored.items()}
        finally:
            server.stop()
