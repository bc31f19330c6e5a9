"""PostgreSQL goes away under a running server and comes back: what was asked meanwhile fails
clearly, nothing is acknowledged without being stored, and the server recovers by itself."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.harness import ChatServer, api, login, visitor
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
