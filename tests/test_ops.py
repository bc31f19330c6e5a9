"""Health, readiness, metrics, and the widget socket's Origin check."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.protocol import State

from tests.appserver import AppServer
from tests.harness import METRICS_HEADERS, ChatServer, api, login, visitor

pytestmark = pytest.mark.anyio


async def test_health_ready_and_metrics(server: ChatServer) -> None:
    v, _ = await visitor(server)
    await v.send(type="message.send", client_msg_id="m", text="count me")
    await v.expect("ack")
    async with httpx.AsyncClient(base_url=server.http) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = (await http.get("/readyz")).json()
        assert ready == {"status": "ok", "checks": {"database": "ok", "bus": "ok"}}
        metrics = (await http.get("/metrics", headers=METRICS_HEADERS)).text
        # How busy the site is stays with whoever holds the metrics token.
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers={"authorization": "Bearer guess"})).status_code == 401
    assert 'chat_open_sockets{kind="visitor"}' in metrics
    assert 'chat_messages_in_total{channel="widget"}' in metrics
    assert "chat_delivery_latency_seconds_bucket" in metrics
    await v.close()


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> ChatServer:
    tmp = tmp_path_factory.mktemp("origin")
    chat = ChatServer(tmp, f"sqlite+aiosqlite:///{tmp / 'chat.db'}", CHAT_ALLOWED_ORIGINS="https://shop.example")
    chat.start()
    yield chat  # type: ignore[misc]
    chat.stop()


async def test_widget_socket_checks_origin(strict_server: ChatServer) -> None:
    url = strict_server.ws + "/ws/widget"
    async with websockets.connect(url, origin="https://evil.example") as ws:  # type: ignore[arg-type]
        frame = json.loads(await ws.recv())
        assert frame["type"] == "error" and frame["code"] == "origin_not_allowed"
    async with websockets.connect(url, origin="https://shop.example") as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello"}))
        assert json.loads(await ws.recv())["type"] == "welcome"
    own = f"http://127.0.0.1:{strict_server.port}"
    async with websockets.connect(url, origin=own) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello"}))
        assert json.loads(await ws.recv())["type"] == "welcome"
    # The scheme counts: neither the server's own host nor an allowed site under another scheme.
    for other_scheme in (f"https://127.0.0.1:{strict_server.port}", "http://shop.example"):
        async with websockets.connect(url, origin=other_scheme) as ws:  # type: ignore[arg-type]
            frame = json.loads(await ws.recv())
            assert frame["type"] == "error" and frame["code"] == "origin_not_allowed", other_scheme


async def test_site_origins_compare_the_scheme_too(strict_server: ChatServer) -> None:
    url = strict_server.ws + "/ws/widget"
    async with api(strict_server, await login(strict_server)) as http:
        r = await http.patch("/site", json={"allowed_origins": ["http://plain.example"]})
        assert r.status_code == 200, r.text
    async with websockets.connect(url, origin="https://plain.example") as ws:  # type: ignore[arg-type]
        frame = json.loads(await ws.recv())
        assert frame["type"] == "error" and frame["code"] == "origin_not_allowed"
    async with websockets.connect(url, origin="http://plain.example") as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello"}))
        assert json.loads(await ws.recv())["type"] == "welcome"


async def test_metrics_are_not_served_without_a_token(tmp_path: Path) -> None:
    async with AppServer(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", metrics_token="") as app:
        async with httpx.AsyncClient(base_url=app.http) as http:
            assert (await http.get("/metrics")).status_code == 404
            assert (await http.get("/metrics", headers=METRICS_HEADERS)).status_code == 404


async def test_connection_rate_limit_per_ip(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("limits")
    chat = ChatServer(tmp, f"sqlite+aiosqlite:///{tmp / 'chat.db'}", CHAT_IP_CONNECTS_PER_MINUTE="3")
    chat.start()
    try:
        codes = []
        for _ in range(5):
            ws = await websockets.connect(chat.ws + "/ws/widget")
            try:
                await ws.send(json.dumps({"type": "hello"}))
            except websockets.ConnectionClosed:
                pass  # refused before the hello arrived; the error frame is still readable
            codes.append(json.loads(await ws.recv()).get("code", "welcome"))
            await ws.close()
        assert codes == ["welcome"] * 3 + ["rate_limited"] * 2
    finally:
        chat.stop()


async def test_a_flood_of_connections_from_one_address_at_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Three hundred sockets opened at the same moment from one address: exactly the allowed
    number get a welcome, every other one a clear `rate_limited` (none hangs or is dropped
    without a word), and the server keeps serving the ones it let in."""
    tmp = tmp_path_factory.mktemp("flood")
    chat = ChatServer(tmp, f"sqlite+aiosqlite:///{tmp / 'chat.db'}", CHAT_IP_CONNECTS_PER_MINUTE="20")
    chat.start()
    opened: list[Any] = []
    try:
        async def knock() -> str:
            ws = await websockets.connect(chat.ws + "/ws/widget")
            opened.append(ws)
            try:
                await ws.send(json.dumps({"type": "hello"}))
            except websockets.ConnectionClosed:
                pass  # refused before the hello arrived; the error frame is still readable
            return str(json.loads(await asyncio.wait_for(ws.recv(), 60)).get("code", "welcome"))

        answers = await asyncio.gather(*(knock() for _ in range(300)))
        assert sorted(set(answers)) == ["rate_limited", "welcome"] and answers.count("welcome") == 20
        admitted = [ws for ws in opened if ws.state is State.OPEN][:20]
        assert len(admitted) == 20
        for n, ws in enumerate(admitted):
            await ws.send(json.dumps({"type": "message.send", "client_msg_id": f"after-{n}", "text": "still here"}))
        for ws in admitted:
            while (frame := json.loads(await asyncio.wait_for(ws.recv(), 30)))["type"] != "ack":
                pass
            assert frame["duplicate"] is False
    finally:
        for ws in opened:
            await ws.close()
        chat.stop()
