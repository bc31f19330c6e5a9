"""Real servers and real clients for the tests: `chat-server serve` in a subprocess on an
ephemeral port, websockets and httpx talking to it over loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from chat_server.frames import SERVER_FRAMES
from tests.services import free_port

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery"
METRICS_TOKEN = "test-metrics-token"
METRICS_HEADERS = {"authorization": f"Bearer {METRICS_TOKEN}"}
ROOT = Path(__file__).resolve().parent.parent

# Every frame a test receives must be one of the documented server frames, exactly.
def check_frame(raw: str | bytes) -> dict[str, Any]:
    data = json.loads(raw)
    frame_type = data["type"]
    matches = [m for m in SERVER_FRAMES if m.model_fields["type"].default == frame_type]
    assert matches, f"undocumented frame type {frame_type!r}"
    errors = []
    for model in matches:
        try:
            model.model_validate(data)
            return data  # type: ignore[no-any-return]
        except Exception as exc:  # try the next model with the same type (welcome)
            errors.append(exc)
    raise AssertionError(f"frame does not match its model: {data}: {errors}")


def embedded_server(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> Iterator[ChatServer]:
    """A test module's own server on the embedded SQLite database (a module-scoped fixture's body)."""
    tmp = tmp_path_factory.mktemp(name)
    chat = ChatServer(tmp, f"sqlite+aiosqlite:///{tmp / 'chat.db'}", **env)
    chat.start()
    yield chat
    chat.stop()


class ChatServer:
    """One `chat-server serve` process. Restartable on the same port and database."""

    def __init__(self, tmp: Path, database_url: str, redis_url: str = "", **env: str) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.database_url = database_url
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CHAT_DATA_DIR": str(tmp / "data"),
            "CHAT_SECRET_KEY": "test-secret-key",
            "CHAT_INITIAL_ADMIN_EMAIL": ADMIN_EMAIL,
            "CHAT_INITIAL_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "CHAT_IP_CONNECTS_PER_MINUTE": "0",
            "CHAT_VISITOR_MESSAGES_PER_MINUTE": "0",
            "CHAT_VISITOR_EVENTS_PER_MINUTE": "0",
            "CHAT_METRICS_TOKEN": METRICS_TOKEN,
            "CHAT_LOG_LEVEL": "WARNING",
            # The demo greeting would answer tests that view a pricing page; its own test turns it on.
            "CHAT_DEMO_TRIGGER": "false",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / f"server-{self.port}.log"
        self._log: Any = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chat_server", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.tmp,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.http + "/readyz", timeout=1).status_code == 200:
                    settle_admin(self.http)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop(signal.SIGKILL)  # a server that never came up must not linger and load the machine
        raise RuntimeError(f"server not ready within {timeout} s: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        code = 0
        if self.proc is not None:
            self.proc.send_signal(sig)
            try:
                code = self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


class Socket:
    """A websocket client that checks every frame against the protocol's models."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def send_raw(self, raw: str | bytes) -> None:
        await self.ws.send(raw)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        frame = check_frame(await asyncio.wait_for(self.ws.recv(), timeout))
        self.seen.append(frame)
        return frame

    async def expect(self, frame_type: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """The next frame of this type (matching `match` on top-level or message fields);
        other frames are kept in `seen` and skipped."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {frame_type} {match} within {timeout}s; saw {self.seen[-10:]}")
            frame = await self.recv(left)
            if frame["type"] == frame_type and _matches(frame, match):
                return frame

    async def settled(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The frames that arrive before the server answers a ping sent now. A socket's frames
        leave in the order they were queued, so whatever was published to this socket before
        the ping is in the list: a check that something did NOT arrive waits on this instead of
        a quiet window. (Across processes, news from another replica is ordered by a later
        frame from that replica instead: see the scale-out tests.)"""
        await self.send(type="ping")
        got: list[dict[str, Any]] = []
        while (frame := await self.recv(timeout))["type"] != "pong":
            got.append(frame)
        return got

    async def close(self) -> None:
        await self.ws.close()


def _matches(frame: dict[str, Any], match: dict[str, Any]) -> bool:
    target = frame.get("message", frame)
    return all(target.get(k, frame.get(k)) == v for k, v in match.items())


async def visitor(server: ChatServer, token: str | None = None, last_seq: int = 0, **hello: Any) -> tuple[Socket, dict[str, Any]]:
    ws = await websockets.connect(server.ws + "/ws/widget", max_size=2**22)
    sock = Socket(ws)
    await sock.send(type="hello", token=token, last_seq=last_seq, **hello)
    welcome = await sock.expect("welcome")
    return sock, welcome


def settle_admin(base: str) -> None:
    """Tests log the shared admin in again and again and decide themselves when someone is
    online (the widget's offline mode depends on it): the admin keeps their last state on
    login, away to begin with. Tests of coming online on login use operators of their own."""
    with httpx.Client(base_url=base + "/api/v1", timeout=10) as http:
        r = http.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert r.status_code == 200, r.text
        http.headers["authorization"] = f"Bearer {r.json()['token']}"
        assert http.patch("/me", json={"availability_on_login": "last"}).status_code == 200
        assert http.post("/me/availability", json={"availability": "away"}).status_code == 200


async def login(server: ChatServer, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> str:
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


async def operator(server: ChatServer, token: str, cursors: dict[int, dict[str, int]] | None = None) -> Socket:
    ws = await websockets.connect(server.ws + "/ws/inbox", max_size=2**22)
    sock = Socket(ws)
    await sock.send(type="hello", token=token, cursors={str(k): v for k, v in (cursors or {}).items()})
    await sock.expect("welcome")
    return sock


def api(server: ChatServer, token: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=server.http + "/api/v1", headers=headers, timeout=10)


async def create_operator(server: ChatServer, admin_token: str, email: str, role: str = "operator",
                          name: str | None = None, availability_on_login: str = "last") -> str:
    """A new operator; returns their login token. They stay away on login unless asked (see
    settle_admin)."""
    async with api(server, admin_token) as http:
        r = await http.post("/operators", json={"name": name or email.split("@")[0], "email": email,
                                                "password": "password-" + email, "role": role,
                                                "availability_on_login": availability_on_login})
        assert r.status_code == 201, r.text
    return await login(server, email, "password-" + email)


async def metric(server: ChatServer | Any, name: str, **labels: str) -> float:
    """One figure from the server's /metrics (a ChatServer or an in-process AppServer)."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(server.http + "/metrics", headers=METRICS_HEADERS)).text
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{wanted} not in /metrics")
