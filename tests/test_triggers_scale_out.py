"""Triggers with two `chat-server serve` processes behind one PostgreSQL and one Redis: both
workers run, each send goes out exactly once; a send whose delay is running when its process
restarts still goes out, once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.channel_helpers import eventually
from tests.harness import ChatServer, api, login
from tests.services import PostgresServer, RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def pair(postgres: PostgresServer, redis_server: RedisServer,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ChatServer, ChatServer, str]]:
    database_url = postgres.create_database(f"triggers_{uuid.uuid4().hex[:8]}")
    a = ChatServer(tmp_path_factory.mktemp("trig-a"), database_url, redis_url=redis_server.url)
    b = ChatServer(tmp_path_factory.mktemp("trig-b"), database_url, redis_url=redis_server.url, CHAT_AUTO_MIGRATE="false")
    a.start()
    try:
        b.start()
        yield a, b, database_url
    finally:
        b.stop()
        a.stop()


def definition(delay: int) -> dict[str, Any]:
    return {"name": f"t {uuid.uuid4().hex[:6]}", "enabled": True, "delay_seconds": delay,
            "when": {"type": "event", "event": "page_viewed", "url_contains": f"/pricing-{delay}"},
            "variants": [{"name": "A", "weight": 100, "text": "Hello from the trigger"}], "limits": {"frequency": "once"}}


async def rows(database_url: str, query: str, **params: Any) -> list[Any]:
    engine = create_async_engine(database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
                                 if database_url.startswith("postgresql://") else database_url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(query), params)).all())
    finally:
        await engine.dispose()


async def setup(server: ChatServer, delay: int) -> tuple[str, int, str]:
    admin = await login(server)
    async with api(server, admin) as http:
        r = await http.post("/triggers", json=definition(delay))
        assert r.status_code == 201, r.text
        key = (await http.post("/api-keys", json={"name": f"k{uuid.uuid4().hex[:6]}"})).json()["secret"]
    return admin, r.json()["id"], key


async def sent_count(server: ChatServer, admin: str, tid: int, want: int) -> int | None:
    async with api(server, admin) as http:
        found = (await http.get(f"/triggers/{tid}")).json()
    return found["sent"] if found["sent"] >= want else None


async def test_two_processes_send_each_message_once(pair: tuple[ChatServer, ChatServer, str]) -> None:
    a, b, database_url = pair
    admin, tid, key = await setup(a, 0)
    people = [f"user-{uuid.uuid4().hex[:8]}" for _ in range(12)]
    for n, user in enumerate(people):
        async with api(a if n % 2 else b, key) as backend:
            r = await backend.post("/track", json={"user_id": user, "name": "page_viewed",
                                                    "url": "https://shop.example/pricing-0"})
            assert r.status_code == 200, r.text
    await eventually(lambda: sent_count(b, admin, tid, len(people)), within=30, what="every send sent")
    sends = await rows(database_url, "SELECT state, message_id FROM trigger_send WHERE trigger_id = :t", t=tid)
    assert len(sends) == len(people) and {s[0] for s in sends} == {"sent"}
    messages = await rows(database_url, "SELECT m.id, m.conversation_id FROM message m WHERE m.kind = 'automatic' "
                                        "AND m.client_msg_id IN (SELECT 'trigger-send-' || id FROM trigger_send "
                                        "WHERE trigger_id = :t)", t=tid)
    assert len(messages) == len(people) == len({m[1] for m in messages})
    assert sorted(m[0] for m in messages) == sorted(s[1] for s in sends)


async def test_a_restart_during_the_delay_sends_once(pair: tuple[ChatServer, ChatServer, str]) -> None:
    a, b, database_url = pair
    b.stop()  # only one process, and it restarts while the send waits
    try:
        admin, tid, key = await setup(a, 3)
        async with api(a, key) as backend:
            r = await backend.post("/track", json={"user_id": f"u-{uuid.uuid4().hex[:8]}", "name": "page_viewed",
                                                    "url": "https://shop.example/pricing-3"})
            assert r.status_code == 200, r.text
        [(state,)] = await rows(database_url, "SELECT state FROM trigger_send WHERE trigger_id = :t", t=tid)
        assert state == "scheduled"
        a.restart()
        admin = await login(a)
        await eventually(lambda: sent_count(a, admin, tid, 1), within=30, what="the delayed send sent")
        messages = await rows(database_url, "SELECT count(*) FROM message m JOIN trigger_send s ON m.client_msg_id = "
                                            "'trigger-send-' || s.id WHERE s.trigger_id = :t", t=tid)
        assert messages == [(1,)]
    finally:
        b.start()
