"""Shared fixtures: real PostgreSQL and Redis servers, chat servers on both databases."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chat_server.runtime import Runtime
from tests.fakes.telegram_api import FakeBotApi
from tests.fakes.vk_api import FakeVk
from tests.harness import ChatServer
from tests.inprocess import QueryCounter, RecordingBus, make_runtime
from tests.services import PostgresServer, RedisServer, S3Server

_db_names = itertools.count(1)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with PostgresServer(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
async def tg() -> AsyncIterator[FakeBotApi]:
    """A local server speaking the Telegram Bot API, for the channel tests."""
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
def vk() -> FakeVk:
    """A local server speaking the VK API, with the community member who writes in the tests."""
    fake = FakeVk()
    fake.users[55501] = ("Мария", "Иванова")
    return fake


def database_url(kind: str, tmp: Path, postgres: PostgresServer | None) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'chat.db'}"
    assert postgres is not None
    return postgres.create_database(f"chat_{next(_db_names)}")


@pytest.fixture(params=["sqlite", "postgres"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    pg = request.getfixturevalue("postgres") if db_kind == "postgres" else None
    return database_url(db_kind, tmp_path, pg)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    """A running server shared by a module's tests, once per database."""
    tmp = tmp_path_factory.mktemp(f"server-{request.param}")
    pg = request.getfixturevalue("postgres") if request.param == "postgres" else None
    chat = ChatServer(tmp, database_url(request.param, tmp, pg))
    chat.start()
    yield chat
    chat.stop()


@pytest.fixture
async def rt(db_url: str) -> AsyncIterator[tuple[Runtime, RecordingBus]]:
    """The actions on a fresh database in this process, with a bus that records."""
    runtime, bus = await make_runtime(db_url)
    yield runtime, bus
    await runtime.db.dispose()


@pytest.fixture
async def counted_rt(rt: tuple[Runtime, RecordingBus]) -> tuple[Runtime, RecordingBus, QueryCounter]:
    """The same, counting the SQL statements sent."""
    runtime, bus = rt
    return runtime, bus, QueryCounter(runtime.db)
