"""Backing up and restoring the embedded SQLite database.

A backup is taken while the server runs: `VACUUM INTO` reads one consistent snapshot (a read
transaction, which in WAL mode never blocks the server's writer) and writes it compacted to a
new file. SQLite's page-stepping backup API was the other candidate; it restarts whenever
another process writes between its steps, so on a busy server it may never finish.

A restore replaces the database file, so it runs with the server stopped: it checks the
backup's integrity first and keeps the database it replaces beside it.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit


class BackupError(Exception):
    """Said to the person running the command, as is."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    seconds: float
    tables: dict[str, int]  # rows per table, for the summary


def sqlite_path(database_url: str) -> Path:
    """The file behind a `sqlite+aiosqlite:///…` URL; anything else is refused clearly."""
    if not database_url.startswith("sqlite"):
        raise BackupError(
            "backup and restore here are for the embedded SQLite database; "
            "for PostgreSQL use pg_dump / pg_restore (see README, Backups)")
    path = unquote(urlsplit(database_url).path)
    return Path(path[1:] if path.startswith("//") else path)


def _check(path: Path) -> dict[str, int]:
    """Integrity of a database file, and its rows per table."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path} cannot be opened: {exc}") from exc
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            raise BackupError(f"{path} is damaged: {verdict}")
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        if "alembic_version" not in names:
            raise BackupError(f"{path} is not a chat server database (no schema version)")
        return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from exc
    finally:
        conn.close()


def backup(database_url: str, destination: Path) -> BackupResult:
    source = sqlite_path(database_url)
    if not source.exists():
        raise BackupError(f"there is no database at {source}")
    if destination.exists():
        raise BackupError(f"{destination} already exists: choose a new file name")
    destination.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    conn = sqlite3.connect(source, timeout=30)
    try:
        conn.execute("VACUUM INTO ?", (str(partial),))
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"the backup failed: {exc}") from exc
    finally:
        conn.close()
    tables = _check(partial)
    partial.rename(destination)  # a file under the final name is always a whole backup
    return BackupResult(destination, destination.stat().st_size, time.monotonic() - started, tables)


def restore(database_url: str, backup_file: Path) -> tuple[BackupResult, Path | None]:
    """Put a backup in place of the database (server stopped). Returns the summary and where
    the replaced database was kept."""
    target = sqlite_path(database_url)
    if not backup_file.exists():
        raise BackupError(f"there is no backup at {backup_file}")
    started = time.monotonic()
    tables = _check(backup_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    kept: Path | None = None
    if target.exists():
        _refuse_if_in_use(target)
        kept = target.with_name(f"{target.name}.before-restore-{time.strftime('%Y%m%d-%H%M%S')}")
        # Fold the write-ahead log into the file first, so what is kept is whole on its own.
        with sqlite3.connect(target) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        target.rename(kept)
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup_file, target)
    return BackupResult(target, target.stat().st_size, time.monotonic() - started, tables), kept


def _refuse_if_in_use(target: Path) -> None:
    """A running server holds the database open; replacing its file under it would lose what it
    writes next. An exclusive lock can only be had when nobody else has the file open."""
    conn = sqlite3.connect(target, timeout=0)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        raise BackupError("the database is in use: stop the server before restoring") from exc
    finally:
        conn.close()
