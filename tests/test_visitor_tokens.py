"""Visitor tokens expire, are renewed silently on sockets that stay open, and tokens from before
expiry existed are only good for one hello (which replaces them); `track` is rate limited."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import websockets
from itsdangerous import URLSafeSerializer

from chat_server.tokens import VisitorTokens
from tests.appserver import AppServer
from tests.harness import ChatServer, Socket, api, visitor

pytestmark = pytest.mark.anyio

SECRET = "test-secret-key"  # what the test servers sign with


def aged(days: int, visitor_id: str, version: int = 0) -> str:
    """A token issued `days` ago."""
    real = time.time
    with pytest.MonkeyPatch.context() as m:
        m.setattr(time, "time", lambda: real() - days * 86400)
        return VisitorTokens(SECRET).issue(visitor_id, version)


async def test_tokens_expire_after_the_configured_days(server: ChatServer) -> None:
    v, welcome = await visitor(server)
    visitor_id = welcome["visitor_id"]
    old = aged(31, visitor_id)
    recent = aged(29, visitor_id)
    async with api(server) as http:
        assert (await http.get("/widget/channel-links", headers={"authorization": f"Visitor {recent}"})).status_code == 200
        assert (await http.get("/widget/channel-links", headers={"authorization": f"Visitor {old}"})).status_code == 401
    # An expired token at hello starts a new visitor; a recent one is the same visitor, renewed.
    _, expired = await visitor(server, token=old)
    assert expired["visitor_id"] != visitor_id
    again, renewed = await visitor(server, token=recent)
    assert renewed["visitor_id"] == visitor_id and renewed["token"] != recent
    for sock in (v, again):
        await sock.close()


async def test_tokens_from_before_expiry_are_replaced_at_hello_and_refused_elsewhere(server: ChatServer) -> None:
    v, welcome = await visitor(server)
    legacy = URLSafeSerializer(SECRET, salt="visitor").dumps(welcome["visitor_id"])
    async with api(server) as http:
        assert (await http.get("/widget/channel-links", headers={"authorization": f"Visitor {legacy}"})).status_code == 401
    again, renewed = await visitor(server, token=legacy)
    assert renewed["visitor_id"] == welcome["visitor_id"] and renewed["token"] != legacy
    async with api(server) as http:
        headers = {"authorization": f"Visitor {renewed['token']}"}
        assert (await http.get("/widget/channel-links", headers=headers)).status_code == 200
    for sock in (v, again):
        await sock.close()


async def test_legacy_tokens_can_be_switched_off(tmp_path: Path) -> None:
    async with AppServer(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", visitor_legacy_tokens=False) as app:
        first = Socket(await websockets.connect(app.ws + "/ws/widget"))
        await first.send(type="hello")
        welcome = await first.expect("welcome")
        legacy = URLSafeSerializer(SECRET, salt="visitor").dumps(welcome["visitor_id"])
        second = Socket(await websockets.connect(app.ws + "/ws/widget"))
        await second.send(type="hello", token=legacy)
        assert (await second.expect("welcome"))["visitor_id"] != welcome["visitor_id"]
        await first.close()
        await second.close()


async def test_a_socket_that_stays_open_gets_a_fresh_token_before_its_own_ages_out(tmp_path: Path) -> None:
    async with AppServer(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}") as app:
        tokens: VisitorTokens = app.app.state.sockets.tokens
        tokens.max_age = 2  # renewed every second instead of every fifteen days
        sock = Socket(await websockets.connect(app.ws + "/ws/widget"))
        await sock.send(type="hello")
        welcome = await sock.expect("welcome")
        fresh = (await sock.expect("token", timeout=5))["token"]
        claim = tokens.claim(fresh)
        assert claim is not None and claim.visitor_id == welcome["visitor_id"] and fresh != welcome["token"]
        await sock.close()


async def test_tracking_is_rate_limited_per_visitor(tmp_path: Path) -> None:
    async with AppServer(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", visitor_events_per_minute=3) as app:
        sock = Socket(await websockets.connect(app.ws + "/ws/widget"))
        await sock.send(type="hello")
        await sock.expect("welcome")
        for i in range(4):
            await sock.send(type="track", name="clicked", properties={"i": i})
        await sock.send(type="ping")
        answers = [await sock.recv(), await sock.recv()]
        assert answers[0]["type"] == "error" and answers[0]["code"] == "rate_limited"
        assert answers[1]["type"] == "pong"
        await sock.close()
