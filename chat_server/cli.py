"""`chat-server serve | migrate | create-operator | import`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import socket
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from . import backup, migrate
from .actions.errors import ActionError
from .actions.inbound_batch import contact_message_writes
from .actions.operators import do_create_operator
from .actions.tracking import event_writes
from .app import create_app
from .bus import LocalBus
from .db import open_database, sqlite_write_problem
from .file_store import open_file_store
from .logs import configure_logging
from .metrics import Metrics
from .models import Role
from .runtime import Runtime
from .settings import Settings

CLOSE_GRACE_SECONDS = 3.0
# uvicorn's websockets-sansio protocol, lighter, with a direct write path for our frames.
WS_PROTOCOL = "chat_server.realtime.wire:ChatWebSocketProtocol"


class GracefulServer(uvicorn.Server):
    """On SIGTERM our sockets close with 1001 (going away) before uvicorn's 1012, so widgets
    and inboxes reconnect to another replica and resume; nothing acknowledged is lost because
    acknowledgements are only sent after commit."""

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self.chat_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        services = getattr(self.chat_app.state, "sockets", None)
        if services is not None:
            await services.hub.close_all(1001)
            deadline = asyncio.get_running_loop().time() + CLOSE_GRACE_SECONDS
            # Polled: sockets leave the hub from many tasks, and this runs once per stop.
            while services.hub.connections() and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await super().shutdown(sockets)
        # uvicorn re-raises the signal once it has shut down, so the process would die "by
        # SIGTERM" (exit 143 under Docker). The stop was clean: exit 0, as process managers
        # and `docker compose` expect of a clean stop.
        self._captured_signals.clear()


def tune_collector() -> None:
    """Python's cycle collector, set for a server: what was built at start (modules, models,
    SQL metadata, definitions) is frozen out of its scans, and it runs after 20,000
    allocations instead of 700. A batch of events makes tens of thousands of short-lived
    objects; with the defaults the collector ran several times per batch, rescanning every
    object the batch still held, and each full pass rescanned the whole process: a quarter
    to a third of the event writer's CPU in the behaviour benchmark (bench/notes.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def serve(settings: Settings, host: str, port: int) -> int:
    configure_logging(settings.log_level, settings.log_json)
    problem = sqlite_write_problem(settings.effective_database_url)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    app = create_app(settings)
    tune_collector()
    config = uvicorn.Config(
        app, host=host, port=port, ws=WS_PROTOCOL, log_config=None, access_log=False,
        # Frames over this are refused by the protocol itself (1009); smaller oversized ones get
        # an error frame from us (settings.max_frame_bytes).
        ws_max_size=max(settings.max_frame_bytes * 4, 1 << 20), ws_ping_interval=20, ws_ping_timeout=20,
        timeout_graceful_shutdown=10, proxy_headers=True, server_header=False,
        ws_per_message_deflate=settings.ws_compression,
    )
    GracefulServer(config, app).run()
    return 0


def _runtime(settings: Settings) -> Runtime:
    """A runtime for one command, wired as the app's lifespan wires it (no other process listens)."""
    bus, metrics = LocalBus(), Metrics()
    db = open_database(settings, bus.publish)
    rt = Runtime(settings=settings, db=db, bus=bus, metrics=metrics,
                 inbound_writes=contact_message_writes(db, metrics), files=open_file_store(settings))
    rt.event_writes = event_writes(rt)
    return rt


async def _create_operator(settings: Settings, name: str, email: str, password: str, role: Role) -> None:
    rt = _runtime(settings)
    try:
        await do_create_operator(rt, name, email, password, role)
    finally:
        await rt.db.dispose()


def _backup_or_restore(settings: Settings, command: str, file: Path) -> int:
    try:
        if command == "backup":
            done = backup.backup(settings.effective_database_url, file)
            kept = None
        else:
            done, kept = backup.restore(settings.effective_database_url, file)
    except backup.BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{done.tables.get(t, 0)} {t.replace('_', ' ')}s" for t in ("contact", "conversation", "message"))
    verb = "backed up to" if command == "backup" else "restored into"
    print(f"{verb} {done.path}: {done.bytes / 1_048_576:.1f} MiB in {done.seconds:.1f} s ({counts}); integrity checked")
    if kept is not None:
        print(f"the database it replaced is kept as {kept}")
    return 0


async def _import(settings: Settings, path: Path, progress: bool) -> int:
    from .imports import import_file

    rt = _runtime(settings)
    try:
        summary = await import_file(rt, path, progress=progress)
    finally:
        await rt.db.dispose()
    print(f"imported {summary.imported}, duplicates {summary.duplicates}, rejected {len(summary.rejected)}")
    for number, reason in summary.rejected[:100]:
        print(f"  line {number}: {reason}")
    if len(summary.rejected) > 100:
        print(f"  … and {len(summary.rejected) - 100} more")
    return 1 if summary.rejected else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chat-server", description="Live chat and unified inbox server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the server")
    serve_cmd.add_argument("--host", help="address to listen on (default CHAT_HOST or 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port (default CHAT_PORT or 8000)")
    commands.add_parser("migrate", help="bring the database schema up to date")
    create = commands.add_parser("create-operator", help="add an operator account")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.operator.value)
    create.add_argument("--password", help="prompted for when not given")
    backup_cmd = commands.add_parser("backup", help="copy the SQLite database to FILE while the server runs")
    backup_cmd.add_argument("file", type=Path)
    restore_cmd = commands.add_parser("restore", help="put a backup in place of the SQLite database (server stopped)")
    restore_cmd.add_argument("file", type=Path)
    imports = commands.add_parser("import", help="import past events from JSON lines or CSV (see docs)")
    imports.add_argument("file", type=Path, help="events.jsonl, or events.csv with a header row")
    imports.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    settings = Settings()

    if args.command == "serve":
        return serve(settings, args.host or settings.host, args.port if args.port is not None else settings.port)
    elif args.command in ("backup", "restore"):
        return _backup_or_restore(settings, args.command, args.file)
    elif args.command == "import":
        if not args.file.is_file():
            print(f"error: no such file: {args.file}", file=sys.stderr)
            return 1
        migrate.upgrade(settings.effective_database_url)
        return asyncio.run(_import(settings, args.file, not args.no_progress))
    elif args.command == "migrate":
        migrate.upgrade(settings.effective_database_url)
        print("database is up to date")
    else:
        password = args.password or getpass.getpass("Password: ")
        migrate.upgrade(settings.effective_database_url)
        try:
            asyncio.run(_create_operator(settings, args.name, args.email, password, Role(args.role)))
        except ActionError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        print(f"created {args.role} {args.email}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
