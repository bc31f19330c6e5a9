"""Engines and sessions: SQLite (embedded default) or PostgreSQL, chosen by URL; the unit of
work that sends a write's news only once it is committed."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.util.concurrency import await_, in_greenlet
from sqlmodel.ext.asyncio.session import AsyncSession

from .bus import Dispatch
from .settings import Settings

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[Dispatch]], Awaitable[None]]
EventData = dict[str, Any] | Callable[[], dict[str, Any]]
R = TypeVar("R")


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
                event.listen(engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.write_engine.sync_engine, "begin", _begin_immediate)
        else:
            # No pre-ping: through asyncpg it is BEGIN, ";" and ROLLBACK, three round trips on every
            # checkout, more than a message's own statements. A connection that died with the
            # server fails its first statement instead; SQLAlchemy then renews the whole pool,
            # and the edges answer that one request as unavailable (see is_unavailable).
            self.write_engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_recycle=3600)
            self.read_engine = self.write_engine
        self._write = async_sessionmaker(self.write_engine, class_=WriteSession, expire_on_commit=False)
        # Reads on PostgreSQL run without BEGIN and ROLLBACK around them: READ COMMITTED gives
        # each statement its own snapshot anyway, so a read transaction bought two round trips
        # and nothing else. (Same pool and engine: only the sessions' connections differ.)
        reads = self.read_engine if self.is_sqlite else self.write_engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read = async_sessionmaker(reads, class_=AsyncSession, expire_on_commit=False)

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

    async def write_batch(self, fn: Callable[[WriteSession], Coroutine[Any, Any, R]]) -> R:
        """`fn(session)` as one write transaction, like `write()`, with all of its statements
        and the commit in one hand-off to the driver's thread on SQLite.

        aiosqlite runs each cursor, execute, fetch and close on its own thread: ~16 hand-offs,
        each a thread wake-up and a GIL handover, made a lone transaction cost ~5 ms of CPU.
        Here the whole of `fn` runs on that thread, its statements going straight to sqlite3.
        So `fn` may await only this session's database work: anything else (another engine,
        a sleep, an executor) fails the write with an error saying so. On PostgreSQL `fn` runs
        as usual (its round trips are the database's own work)."""
        async def with_events(session: WriteSession) -> R:
            result = await fn(session)
            if session.events and self.write_events is not None:
                await self.write_events(session)  # the webhooks' deliveries, in this transaction
            return result

        async with self._write() as session:
            session.has_bus = self._publish is not None
            if self.is_sqlite:
                result = await _in_one_handoff(session, with_events)
            else:
                async with session.begin():
                    result = await with_events(session)
        await self._after_commit(session)
        return result

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


def sqlite_write_problem(url: str) -> str | None:
    """Why the server could not write its SQLite file (a read-only mount, a file or folder it
    may not write), said before it starts rather than as a traceback from its first write."""
    path = Path(url.split(":///", 1)[1]) if url.startswith("sqlite") and ":///" in url else None
    if path is None or str(path) == ":memory:":
        return None
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # created at start: the nearest existing folder must be writable
    for target in ([path] if path.exists() else []) + [folder]:
        if not os.access(target, os.W_OK):
            return (f"the database {path} cannot be written: {target} is read-only (a read-only mount, or "
                    "permissions); nothing could be stored, so the server does not start")
    return None


def ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Same layout (no slots of its own): the adapter gains the batch and no-op shortcuts.
    dbapi_connection.__class__ = _BatchableConnection
    # Let SQLAlchemy's "begin" event decide how transactions start (see _begin_immediate).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across app crashes; WAL keeps it consistent
    cursor.execute("PRAGMA busy_timeout=10000")  # other processes writing the same file
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(conn: Any) -> None:
    deferred = _DEFER_BEGIN.get()
    conn.info[_BEGIN_PENDING] = deferred
    if not deferred:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# --- a batch in one hand-off (SQLite) ----------------------------------------------------------

# Set while a batch procures its connection: BEGIN is then sent with the batch, not alone.
_DEFER_BEGIN: contextvars.ContextVar[bool] = contextvars.ContextVar("defer_begin", default=False)
_BEGIN_PENDING = "chat_begin_pending"
# On the driver's thread, during a batch: the aiosqlite connection whose batch this is.
_ON_DRIVER = threading.local()


class _BatchableConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite adapter, with two shortcuts.

    - During a batch on this connection's own thread, statements and the commit go straight
      to sqlite3: handing them to the thread we are already on would wait for ourselves.
    - A commit or rollback with no transaction open costs nothing. The pool rolls back every
      connection it gets back, so each read and each write paid a hand-off for nothing.
    """

    __slots__ = ()

    def _direct(self) -> bool:
        return getattr(_ON_DRIVER, "conn", None) is self._connection

    def _idle(self) -> bool:
        raw = self._connection._connection
        return raw is not None and not raw.in_transaction

    def cursor(self, server_side: bool = False) -> Any:
        if self._direct():
            if in_greenlet():
                # AsyncConnection.execute insists its statement awaited something: a no-op
                # that completes at once (two greenlet switches, no trip to the event loop).
                await_(_nothing())
            return self._connection._conn.cursor(_DirectCursor)
        return super().cursor(server_side)

    def commit(self) -> None:
        if self._direct():
            self._connection._conn.commit()
        elif not self._idle():
            super().commit()

    def rollback(self) -> None:
        if self._direct():
            self._connection._conn.rollback()
        elif not self._idle():
            super().rollback()


async def _nothing() -> None:
    return None


class _DirectCursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """The async result's hook for the adapter's cursor; a plain cursor keeps its rows."""


async def _in_one_handoff(session: WriteSession, fn: Callable[[WriteSession], Coroutine[Any, Any, R]]) -> R:
    token = _DEFER_BEGIN.set(True)
    try:
        # Procured here, on the event loop: opening a new connection needs it.
        conn = await session.connection()
    finally:
        _DEFER_BEGIN.reset(token)
    driver = (await conn.get_raw_connection()).driver_connection
    sync_conn, sync_session = conn.sync_connection, session.sync_session
    assert driver is not None and sync_conn is not None

    def batch() -> R:
        _ON_DRIVER.conn = driver
        try:
            if sync_conn.info.pop(_BEGIN_PENDING, False):
                sync_conn.exec_driver_sql("BEGIN IMMEDIATE")
            result = _run_to_end(fn(session))
            sync_session.commit()
            return result
        except BaseException:
            # Whatever state SQLAlchemy is left in (a commit that failed has already let go
            # of its transaction, so the pool would not roll back), the file's ends here.
            driver._conn.rollback()
            raise
        finally:
            _ON_DRIVER.conn = None

    job = asyncio.ensure_future(driver._execute(contextvars.copy_context().run, batch))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        # The thread finishes the batch whatever happens; the session must not be closed under it.
        await asyncio.wait([job])
        raise


def _run_to_end(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine that never waits: on the driver's thread every statement of its
    session completes at once, so it runs to its end in one step."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    except RuntimeError as exc:
        if "event loop" in str(exc):
            raise RuntimeError("a write_batch function awaited something other than its session's database work") from exc
        raise
    coro.close()
    raise RuntimeError("a write_batch function awaited something other than its session's database work")


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
        # PostgreSQL refusing connections while it stops or starts ("the database system is
        # shutting down", 57P03) reaches us as a plain DBAPIError: known by its SQLSTATE.
        if getattr(seen, "sqlstate", None) in UNAVAILABLE_STATES or str(getattr(seen, "sqlstate", "")).startswith("08"):
            return True
        seen = seen.__cause__
    return False


# Administrator shutdown, crash shutdown, cannot connect now (starting or stopping).
UNAVAILABLE_STATES = {"57P01", "57P02", "57P03"}
