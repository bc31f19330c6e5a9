"""Engines and sessions: SQLite (embedded default) or PostgreSQL, chosen by URL; the unit of
work that sends a write's news only once it is committed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from .bus import Dispatch
from .settings import Settings

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[Dispatch]], Awaitable[None]]
EventData = dict[str, Any] | Callable[[], dict[str, Any]]


class WriteSession(AsyncSession):
    """The session of one write transaction, and its unit of work.

    An action registers the news of what it writes here, inside its transaction; the
    database hands it to the bus once the transaction has committed, and drops it on
    rollback. So news can be neither sent before the rows are visible nor forgotten, and
    a failed write tells nobody anything (zulip's send_event_on_commit).

    Register in the outer transaction: what a rolled-back savepoint registered still goes out.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dispatches: list[Dispatch] = []
        self.commit_hooks: list[Callable[[], None]] = []
        self.has_bus = False
        self.events: list[tuple[str, str, EventData]] = []  # (type, order key, data) for the webhooks

    def publish(self, dispatches: Iterable[Dispatch]) -> None:
        """Send these to their audiences once this transaction has committed."""
        if not self.has_bus:
            raise RuntimeError("this database has no bus to publish on")
        self.dispatches.extend(dispatches)

    def on_commit(self, hook: Callable[[], None]) -> None:
        """Call `hook` once this transaction has committed (after its dispatches went out)."""
        self.commit_hooks.append(hook)

    def emit(self, event_type: str, data: EventData, order_key: str = "") -> None:
        """Report this change to the outgoing webhooks: their deliveries are written in this same
        transaction, just before it commits (`Database.write_events`), so they exist exactly
        when the change does. Events with the same `order_key` reach an endpoint in order; `data`
        may be a function, called only when some endpoint wants the event."""
        self.events.append((event_type, order_key, data))


class Database:
    """Two engines on SQLite, one on PostgreSQL.

    SQLite allows one writer at a time. Writes go through a single pooled connection that
    opens its transactions with BEGIN IMMEDIATE, so writers queue instead of failing with
    "database is locked" halfway through; reads use their own pool and run beside them (WAL).
    PostgreSQL serialises what must be serialised with row locks, so one engine serves both.
    """

    def __init__(self, url: str, publish: Publish | None = None) -> None:
        """`publish` (the bus's) receives every write's dispatches after its commit; a database
        without one (a script, a test's seeding) refuses writes that have news to send."""
        self.url = url
        self._publish = publish
        # Writes the emitted events' webhook deliveries into the transaction (set in the lifespan).
        self.write_events: Callable[[WriteSession], Awaitable[None]] | None = None
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
        self._write = async_sessionmaker(self.write_engine, class_=WriteSession, expire_on_commit=False)
        self._read = async_sessionmaker(self.read_engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[WriteSession]:
        """A session in one transaction: committed on success, rolled back on error. What it
        registered (`publish`, `on_commit`) runs after the commit, with the connection already
        given back: SQLite's one writer is not held while the news goes out."""
        async with self._write() as session:
            session.has_bus = self._publish is not None
            async with session.begin():
                yield session
                if session.events and self.write_events is not None:
                    await self.write_events(session)
        # Only reached when the transaction committed: an exception (the rollback) skips it.
        await self._after_commit(session)

    async def _after_commit(self, session: WriteSession) -> None:
        if session.dispatches and self._publish is not None:
            await self._publish(session.dispatches)
        for hook in session.commit_hooks:
            try:
                hook()
            except Exception:  # the write is done and its news sent; a hook must not undo the answer
                log.exception("an after-commit hook failed")

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


def open_database(settings: Settings, publish: Publish | None = None) -> Database:
    return Database(settings.effective_database_url, publish)


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


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or could not write (server down, connection lost, disk
    full, file read-only): nothing was stored, and the same request may work in a moment. The
    edges answer it as 503 / `unavailable` rather than as a fault of the request or the code."""
    seen: BaseException | None = exc
    for _ in range(5):  # the driver's error is usually the cause of SQLAlchemy's
        if seen is None:
            return False
        if isinstance(seen, (OperationalError, InterfaceError, ConnectionError, OSError)):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__
    return False
