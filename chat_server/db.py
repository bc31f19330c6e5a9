"""Engines and sessions: SQLite (embedded default) or PostgreSQL, chosen by URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from .settings import Settings


class Database:
    """Two engines on SQLite, one on PostgreSQL.

    SQLite allows one writer at a time. Writes go through a single pooled connection that
    opens its transactions with BEGIN IMMEDIATE, so writers queue instead of failing with
    "database is locked" halfway through; reads use their own pool and run beside them (WAL).
    PostgreSQL serialises what must be serialised with row locks, so one engine serves both.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            ensure_sqlite_dir(url)
            self.read_engine = create_async_engine(url, pool_size=4, max_overflow=4)
            self.write_engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=60)
            for engine in (self.read_engine, self.write_engine):
                event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.write_engine.sync_engine, "begin", _begin_immediate)
        else:
            self.write_engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            self.read_engine = self.write_engine
        self._write = async_sessionmaker(self.write_engine, class_=AsyncSession, expire_on_commit=False)
        self._read = async_sessionmaker(self.read_engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error."""
        async with self._write() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read() as session:
            yield session

    async def ping(self) -> None:
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def open_database(settings: Settings) -> Database:
    return Database(settings.effective_database_url)


def ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event decide how transactions start (see _begin_immediate).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes; WAL keeps it consistent
    cursor.execute("PRAGMA busy_timeout=10000")  # other processes writing the same file
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
