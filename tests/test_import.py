"""Importing past events: JSON lines and CSV, a summary with line numbers and reasons, and a
file imported twice stores nothing twice; the console command prints the same summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, func, select

from chat_server.imports import import_file
from chat_server.models import Contact, Event
from chat_server.runtime import Runtime

pytestmark = pytest.mark.anyio


async def events_named(rt: Runtime, name: str) -> int:
    async with rt.db.read() as s:
        return int((await s.exec(select(func.count()).select_from(Event).where(col(Event.name) == name))).one())


async def test_json_lines_twice(rt: tuple[Runtime, Any], tmp_path: Path) -> None:
    runtime, _ = rt
    async with runtime.db.write() as s:
        s.add(Contact(name="Known"))
    lines = [
        {"user_id": "u1", "name": "order_placed", "properties": {"amount": 10}, "occurred_at": "2024-03-01T10:00:00Z",
         "event_id": "o-1"},
        {"user_id": "u1", "name": "order_placed", "occurred_at": "2024-03-02T10:00:00+02:00", "event_id": "o-2"},
        {"contact_id": 1, "name": "order_placed", "event_id": "o-3"},
        {"user_id": "u2", "name": "order_placed", "occurred_at": "2024-03-01"},  # no time zone
        {"email": "nobody@example.com", "name": "order_placed"},
        {"user_id": "u3"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([*(json.dumps(x) for x in lines), "{broken", "[1]"]) + "\n")
    first = await import_file(runtime, path, progress=False)
    assert (first.imported, first.duplicates) == (3, 0)
    assert [n for n, _ in first.rejected] == [4, 5, 6, 7, 8]
    assert "time zone" in first.rejected[0][1] or "timezone" in first.rejected[0][1]
    assert "no contact with that email" in first.rejected[1][1]
    again = await import_file(runtime, path, progress=False)
    assert (again.imported, again.duplicates) == (0, 3)
    assert await events_named(runtime, "order_placed") == 3


async def test_csv(rt: tuple[Runtime, Any], tmp_path: Path) -> None:
    runtime, _ = rt
    path = tmp_path / "events.csv"
    path.write_text("user_id,name,occurred_at,event_id,properties,properties.plan\n"
                    "c1,signed_up,2024-01-01T00:00:00Z,s-1,\"{\"\"source\"\": \"\"ads\"\"}\",pro\n"
                    "c2,signed_up,not a date,s-2,,\n"
                    "c3,signed_up,,,[1],\n")
    summary = await import_file(runtime, path, progress=False)
    assert summary.imported == 1 and [n for n, _ in summary.rejected] == [3, 4]
    async with runtime.db.read() as s:
        event = (await s.exec(select(Event).where(Event.name == "signed_up"))).one()
    assert event.properties == {"source": "ads", "plan": "pro"} and event.occurred_at.year == 2024


def test_the_console_command(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"user_id": "u1", "name": "x", "event_id": "e1"}) + "\n" + "nope\n")
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", "CHAT_SECRET_KEY": "t"}
    run = subprocess.run([sys.executable, "-m", "chat_server", "import", str(path)], capture_output=True, text=True,
                         env=env, timeout=120, cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "imported 1, duplicates 0, rejected 1" in run.stdout and "line 2: not JSON" in run.stdout
    assert "lines" in run.stderr  # the progress bar
    again = subprocess.run([sys.executable, "-m", "chat_server", "import", "--no-progress", str(path)],
                           capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert "imported 0, duplicates 1, rejected 1" in again.stdout
