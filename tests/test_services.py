"""Self-check for tests/services.py: the real servers start, answer and stop."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from tests.services import PostgresServer, RedisServer


def _redis_ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64)


def test_redis_server_start_restart(tmp_path: Path) -> None:
    with RedisServer(tmp_path) as redis:
        assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
        assert _redis_ping(redis.port).startswith(b"+PONG")
        port = redis.port
        redis.restart()
        assert redis.port == port
        assert _redis_ping(redis.port).startswith(b"+PONG")
    assert not redis.running


def test_postgres_server_create_database(tmp_path: Path) -> None:
    import asyncpg  # type: ignore[import-untyped]

    with PostgresServer(tmp_path) as pg:
        url = pg.create_database("services_selfcheck")
        assert url == f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/services_selfcheck"

        async def select_one() -> int:
            # asyncpg wants a plain postgresql:// DSN, not the SQLAlchemy one.
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                value: int = await conn.fetchval("select 1")
                return value
            finally:
                await conn.close()

        assert asyncio.run(select_one()) == 1
    assert not pg.running
