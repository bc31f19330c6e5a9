"""The actions on a real database inside the test process, with a bus that records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import event

from chat_server import migrate
from chat_server.actions.inbound_batch import contact_message_writes
from chat_server.actions.tracking import event_writes
from chat_server.bus import Bus, Dispatch
from chat_server.db import Database
from chat_server.file_store import open_file_store
from chat_server.metrics import Metrics
from chat_server.runtime import Runtime
from chat_server.settings import Settings


class RecordingBus:
    def __init__(self) -> None:
        self.published: list[Dispatch] = []

    async def start(self, listeners: Any) -> None:
        return None

    async def publish(self, dispatches: Sequence[Dispatch]) -> None:
        self.published.extend(dispatches)

    async def ping(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class QueryCounter:
    """Counts the SQL statements sent, like zulip's assert_database_query_count."""

    def __init__(self, db: Database) -> None:
        self.statements: list[str] = []
        for engine in {db.write_engine, db.read_engine}:
            event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def reset(self) -> None:
        self.statements.clear()

    @property
    def count(self) -> int:
        return len(self.statements)


def runtime_for(settings: Settings, bus: Bus) -> Runtime:
    """A runtime wired as the app's lifespan wires it: writes publish on `bus` after commit."""
    metrics = Metrics()
    db = Database(settings.effective_database_url, bus.publish)
    rt = Runtime(settings=settings, db=db, bus=bus, metrics=metrics, inbound_writes=contact_message_writes(db, metrics),
                 files=open_file_store(settings))
    rt.event_writes = event_writes(rt)
    return rt


async def make_runtime(database_url: str) -> tuple[Runtime, RecordingBus]:
    await migrate.upgrade_async(database_url)
    bus = RecordingBus()
    return runtime_for(Settings(database_url=database_url, secret_key="test"), bus), bus
