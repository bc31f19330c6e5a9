"""The console script as a newcomer uses it: embedded default, migrate, create-operator."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.services import free_port


def clean_env() -> dict[str, str]:
    # Nothing configured: no DATABASE_URL, no REDIS_URL, no CHAT_* settings.
    return {k: v for k, v in os.environ.items() if not k.startswith("CHAT_") and k not in ("DATABASE_URL", "REDIS_URL")}


def chat_server(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chat_server", *args], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=60)


def test_first_start_on_the_embedded_default_prints_how_to_log_in(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "out.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "chat_server", "serve", "--port", str(port)],
                                cwd=tmp_path, env=clean_env(), stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            printed = log.read_text()
            found = re.search(r"as (\S+) with password (\S+)", printed)
            assert found, printed
            r = httpx.post(f"http://127.0.0.1:{port}/api/v1/auth/login",
                           json={"email": found.group(1), "password": found.group(2)})
            assert r.status_code == 200 and r.json()["operator"]["role"] == "admin"
            assert (tmp_path / "data" / "chat.db").exists()
        finally:
            proc.send_signal(signal.SIGTERM)
            # uvicorn shuts down gracefully, then re-raises the signal it caught.
            assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
            assert "Application shutdown complete" in log.read_text()


def test_migrate_and_create_operator(tmp_path: Path) -> None:
    migrated = chat_server("migrate", cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    created = chat_server("create-operator", "--email", "Sales@Example.com", "--name", "Sam", "--role", "sales",
                          "--password", "long enough", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    again = chat_server("create-operator", "--email", "sales@example.com", "--name", "Sam",
                        "--password", "long enough", cwd=tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr
    weak = chat_server("create-operator", "--email", "x@example.com", "--name", "X", "--password", "short",
                       cwd=tmp_path)
    assert weak.returncode == 1 and "at least" in weak.stderr
