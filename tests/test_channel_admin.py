"""Admins manage channel instances: validated settings, secrets stored but shown masked,
several instances per channel, removal fails the replies still waiting for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat_server.actions.outbound import claim_due_jobs
from tests.appserver import AppServer
from tests.channel_helpers import add_channel, admin, eventually, thread
from tests.harness import api, create_operator, login, visitor
from tests.inprocess import make_runtime

pytestmark = pytest.mark.anyio

TOKEN = "123456:AAH-secret-bot-token_abcdefghijkl"


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[AppServer]:
    async with AppServer(tmp_path, db_url, channel_workers=False) as server:
        yield server


def bot(**extra: Any) -> dict[str, Any]:
    return {"token": TOKEN, "bot_username": "acme_bot", **extra}


async def test_secrets_are_stored_but_never_returned_in_full(app: AppServer) -> None:
    async with await admin(app) as http:
        created = await add_channel(http, "telegram", bot(webhook_secret="w" * 40))
        for view in (created, (await http.get(f"/channels/{created['id']}")).json(),
                     (await http.get("/channels")).json()["items"][0]):
            assert TOKEN not in str(view) and "w" * 40 not in str(view)
            assert view["config"]["token"] == "••••ijkl" and view["config"]["bot_username"] == "acme_bot"
        # Sending the masked value back (as a form would) keeps the stored secret.
        r = await http.patch(f"/channels/{created['id']}", json={"name": "Second line", "check": False,
                                                                 "config": {**created["config"], "poll_timeout": 5}})
        assert r.status_code == 200, r.text
        assert r.json()["config"]["token"] == "••••ijkl" and r.json()["config"]["poll_timeout"] == 5
        r = await http.patch(f"/channels/{created['id']}", json={"config": {"token": "123456:AAH-new-token-xyz-0000"},
                                                                 "check": False})
        assert r.json()["config"]["token"] == "••••0000"


async def test_bad_settings_are_refused_with_the_field_named(app: AppServer) -> None:
    async with await admin(app) as http:
        r = await http.post("/channels", json={"channel": "telegram", "name": "x", "config": {"token": "nope"}})
        assert r.status_code == 422
        body = r.json()["error"]
        assert body["code"] == "invalid_config" and "token" in body["message"]
        r = await http.post("/channels", json={"channel": "vk", "name": "x", "config": {**bot(), "unknown": 1}})
        assert r.status_code == 422
        r = await http.post("/channels", json={"channel": "fax", "name": "x", "config": {}})
        assert r.status_code == 422
        assert (await http.get("/channels")).json()["items"] == []


async def test_only_admins_manage_channels(app: AppServer) -> None:
    async with await admin(app) as http:
        await add_channel(http, "telegram", bot())
    token = await create_operator(app, await login(app), "op@example.com")
    async with api(app, token) as http:
        assert (await http.get("/channels")).status_code == 403
        assert (await http.post("/channels", json={"channel": "telegram", "name": "x", "config": bot()})).status_code == 403


async def test_several_instances_per_channel_and_links_for_each(app: AppServer) -> None:
    sock, welcome = await visitor(app)
    async with httpx.AsyncClient(base_url=app.http) as client:
        headers = {"Authorization": f"Visitor {welcome['token']}"}
        assert (await client.get("/api/v1/widget/channel-links", headers=headers)).json() == {"links": []}
        async with await admin(app) as http:
            await add_channel(http, "telegram", bot(), name="Sales bot")
            await add_channel(http, "telegram", bot(bot_username="acme_support_bot"), name="Support bot")
            off = await add_channel(http, "telegram", bot(bot_username="acme_old_bot"), name="Old bot")
            await http.patch(f"/channels/{off['id']}", json={"enabled": False})
        links = (await client.get("/api/v1/widget/channel-links", headers=headers)).json()["links"]
    assert [link["url"].split("?")[0] for link in links] == ["https://t.me/acme_bot", "https://t.me/acme_support_bot"]
    await sock.close()


async def waiting_reply(app: AppServer, http: httpx.AsyncClient) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """A Telegram customer's message and an operator's reply to it, waiting in the queue (no
    workers run in this app): the channel instance, the conversation id and the reply."""
    instance = await add_channel(http, "telegram", bot(webhook_secret="x" * 20, mode="webhook"))
    async with httpx.AsyncClient(base_url=app.http) as client:
        update = {"update_id": 1, "message": {"message_id": 1, "date": 1763900000, "text": "hi",
                                              "from": {"id": 42, "is_bot": False, "first_name": "Zoe"},
                                              "chat": {"id": 42, "type": "private"}}}
        r = await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=update,
                              headers={"X-Telegram-Bot-Api-Secret-Token": "x" * 20})
        assert r.status_code == 200, r.text
    conv = (await http.get("/conversations")).json()["items"][0]
    reply = (await http.post(f"/conversations/{conv['id']}/messages", json={"text": "hello"})).json()["message"]
    assert reply["delivery_state"] == "pending"
    return instance, conv["id"], reply


async def test_a_paused_channel_keeps_its_waiting_replies_until_switched_on(app: AppServer) -> None:
    # Pausing a bot (a leaked token, a move to another bot) must stop what it sends, the replies
    # already queued included; they leave once it is switched on again.
    rt, _ = await make_runtime(app.settings.database_url)
    try:
        async with await admin(app) as http:
            instance, _, reply = await waiting_reply(app, http)
            assert (await http.patch(f"/channels/{instance['id']}", json={"enabled": False})).status_code == 200
            assert await claim_due_jobs(rt) == []
            assert (await http.patch(f"/channels/{instance['id']}", json={"enabled": True})).status_code == 200
            assert [job.message.id for job in await claim_due_jobs(rt)] == [reply["id"]]
    finally:
        await rt.db.dispose()


async def test_removing_a_channel_fails_the_replies_waiting_for_it(tmp_path: Path, app: AppServer) -> None:
    async with await admin(app) as http:
        instance, conv_id, reply = await waiting_reply(app, http)
        conv = {"id": conv_id}
        r = await http.delete(f"/channels/{instance['id']}")
        assert r.json() == {"ok": True, "failed_replies": 1}

        async def failed() -> Any:
            return [m for m in await thread(http, conv["id"]) if m["id"] == reply["id"] and m["delivery_state"] == "failed"]
        [m] = await eventually(failed)
        assert "removed" in m["delivery_error"]
        assert (await http.get(f"/channels/{instance['id']}")).status_code == 404
        async with httpx.AsyncClient(base_url=app.http) as client:
            r = await client.post(f"/api/v1/channels/{instance['id']}/webhook", json={})
            assert r.status_code == 404
