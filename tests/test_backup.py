"""Backing up the embedded database while the server answers, and restoring it."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import ChatServer, api, login, visitor

pytestmark = pytest.mark.anyio


def chat_server(server: ChatServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chat_server", *args], cwd=server.tmp, env=server.env,
                          capture_output=True, text=True, timeout=120)


def messages_in(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT text FROM message ORDER BY id")]
    finally:
        conn.close()


async def test_backup_while_visitors_write_then_restore(tmp_path: Path) -> None:
    server = ChatServer(tmp_path, "")  # the embedded default: SQLite under CHAT_DATA_DIR
    server.start()
    try:
        v, _ = await visitor(server)
        acked: list[str] = []
        stop, twenty = asyncio.Event(), asyncio.Event()

        async def keep_writing() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                await v.send(type="message.send", client_msg_id=f"m{n}", text=f"message {n}")
                await v.expect("ack", client_msg_id=f"m{n}")
                acked.append(f"message {n}")
                if len(acked) == 20:
                    twenty.set()

        writer = asyncio.create_task(keep_writing())
        await asyncio.wait_for(twenty.wait(), 30)
        before = len(acked)
        target = tmp_path / "backups" / "chat.db"
        done = await asyncio.to_thread(chat_server, server, "backup", str(target))
        after = len(acked)
        stop.set()
        await writer
        assert done.returncode == 0, done.stderr
        assert "integrity checked" in done.stdout
        saved = messages_in(target)
        # One consistent snapshot: everything acknowledged before it started, in order, nothing
        # half-written, and nothing that was not acknowledged by the time it ended.
        assert saved == acked[: len(saved)] and before <= len(saved) <= after + 1, (before, len(saved), after)
        again = await asyncio.to_thread(chat_server, server, "backup", str(target))
        assert again.returncode == 1 and "already exists" in again.stderr

        refused = await asyncio.to_thread(chat_server, server, "restore", str(target))
        assert refused.returncode == 1 and "stop the server" in refused.stderr
        await v.close()
    finally:
        server.stop()

    restored = await asyncio.to_thread(chat_server, server, "restore", str(target))
    assert restored.returncode == 0, restored.stderr
    assert "is kept as" in restored.stdout
    assert messages_in(tmp_path / "data" / "chat.db") == saved
    server.start()
    try:
        token = await login(server)
        async with api(server, token) as http:
            conversations = (await http.get("/conversations", params={"status": "open"})).json()["items"]
            thread = (await http.get(f"/conversations/{conversations[0]['id']}/messages")).json()["items"]
        assert thread and [m["text"] for m in thread] == saved[-len(thread):]  # the newest page
    finally:
        server.stop()


def test_backup_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    server = ChatServer(tmp_path, "postgresql://chat@127.0.0.1:1/chat")
    pg = chat_server(server, "backup", str(tmp_path / "x.db"))
    assert pg.returncode == 1 and "pg_dump" in pg.stderr
    (tmp_path / "empty").mkdir()
    sqlite = ChatServer(tmp_path / "empty", "")
    missing = chat_server(sqlite, "restore", str(tmp_path / "nothing.db"))
    assert missing.returncode == 1 and "no backup at" in missing.stderr
    (tmp_path / "not-a-db").write_bytes(b"hello, this is not SQLite" * 100)
    garbage = chat_server(sqlite, "restore", str(tmp_path / "not-a-db"))
    assert garbage.returncode == 1 and "not a readable SQLite database" in garbage.stderr
