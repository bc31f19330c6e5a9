"""Nobody forges a callback and nothing reaches inside: VK's Callback API needs its secret, and
file URLs in payloads are fetched only from the services' own hosts, never internal ones."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from integrations.base import DownloadPolicy, DownloadRefused
from integrations.vk import VkAdapter, VkConfig
from tests.appserver import AppServer
from tests.channel_fakes import fake_vk_registry
from tests.channel_helpers import add_channel, admin, eventually, fixture, thread
from tests.fakes.telegram_api import TOKEN, FakeBotApi
from tests.fakes.vk_api import GROUP_ID, FakeVk
from tests.fakes.vk_api import TOKEN as VK_TOKEN
from tests.services import free_port

pytestmark = pytest.mark.anyio

SECRET = "vk-callback-secret"


def vk_config(**extra: Any) -> dict[str, Any]:
    return {"token": VK_TOKEN, "group_id": GROUP_ID, "mode": "callback", "confirmation": "3f2a9c1b",
            "secret": SECRET, **extra}


class InternalService:
    """Something on loopback that must never be fetched on a payload's say-so."""

    def __init__(self) -> None:
        self.port = free_port()
        self.hits: list[str] = []
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> InternalService:
        async def secret(request: web.Request) -> web.Response:
            self.hits.append(request.path)
            return web.Response(body=b"internal secrets", content_type="application/pdf")
        app = web.Application()
        app.router.add_get("/{tail:.*}", secret)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def internal() -> AsyncIterator[InternalService]:
    async with InternalService() as service:
        yield service


@pytest.fixture
async def app(tmp_path: Path, db_url: str, vk: FakeVk) -> AsyncIterator[AppServer]:
    registry = fake_vk_registry(vk)
    # Only the VK fake's file host: loopback is not named, so it is refused like in production.
    async with AppServer(tmp_path, db_url, registry, channel_file_hosts="files.vk.ru,*.userapi.com") as server:
        yield server


async def only_message(http: httpx.AsyncClient) -> dict[str, Any]:
    async def probe() -> list[dict[str, Any]] | None:
        convs = (await http.get("/conversations")).json()["items"]
        return await thread(http, convs[0]["id"]) if convs else None
    [m] = await eventually(probe, what="the message stored")
    return m


# --- 9. the Callback API needs its secret -----------------------------------------------------


async def test_callback_mode_without_a_secret_is_refused_on_create_and_update(app: AppServer) -> None:
    async with await admin(app) as http:
        r = await http.post("/channels", json={"channel": "vk", "name": "vk", "config": vk_config(secret="")})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_config" and "secret" in r.json()["error"]["message"]
        r = await http.post("/channels", json={"channel": "vk", "name": "vk", "config": {
            k: v for k, v in vk_config().items() if k != "secret"}})
        assert r.status_code == 422 and "secret" in r.json()["error"]["message"]
        assert (await http.get("/channels")).json()["items"] == []
        created = await add_channel(http, "vk", vk_config())
        r = await http.patch(f"/channels/{created['id']}", json={"config": {"secret": ""}})
        assert r.status_code == 422 and "secret" in r.json()["error"]["message"]
        # Long Poll needs no secret: nothing can post to it.
        r = await http.patch(f"/channels/{created['id']}", json={"config": {"secret": "", "mode": "longpoll"}})
        assert r.status_code == 200, r.text


async def test_a_callback_instance_stored_without_a_secret_takes_no_calls() -> None:
    # An instance saved before the rule: its settings no longer validate, and even read as
    # they are, a call without the secret is refused.
    config = VkConfig.model_construct(**{**VkConfig.model_validate(vk_config()).model_dump(), "secret": ""})
    event = fixture("vk", "text", secret="")
    answer = await VkAdapter().webhook(config, {}, json.dumps(event).encode())
    assert answer.status == 403 and answer.updates == []


# --- 10. files only from the services' own hosts ---------------------------------------------


async def test_a_vk_doc_pointing_at_loopback_is_not_fetched(app: AppServer, internal: InternalService) -> None:
    async with await admin(app) as http:
        instance = await add_channel(http, "vk", vk_config())
        event = fixture("vk", "doc", secret=SECRET)
        event["object"]["message"]["attachments"][0]["doc"]["url"] = f"http://127.0.0.1:{internal.port}/admin/dump"
        async with httpx.AsyncClient(base_url=app.http, timeout=30) as client:
            assert (await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=event)).text == "ok"
        m = await only_message(http)
        assert m["attachments"] == []
        assert m["text"] == "[contract.pdf: not downloaded: 127.0.0.1 is not one of the service's file hosts]"
    assert internal.hits == []


async def test_a_redirect_from_the_file_host_to_an_internal_address_is_not_followed(
    app: AppServer, vk: FakeVk, internal: InternalService,
) -> None:
    vk.redirects["/doc/contract.pdf"] = f"http://127.0.0.1:{internal.port}/admin/dump"
    async with await admin(app) as http:
        instance = await add_channel(http, "vk", vk_config())
        async with httpx.AsyncClient(base_url=app.http, timeout=30) as client:
            await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=fixture("vk", "doc", secret=SECRET))
        m = await only_message(http)
        assert m["attachments"] == [] and "not downloaded" in m["text"]
    assert internal.hits == []


async def test_a_redirect_within_the_file_hosts_is_followed(app: AppServer, vk: FakeVk) -> None:
    vk.redirects["/doc/contract.pdf"] = "https://files.vk.ru/cdn/contract.pdf"
    vk.files["/cdn/contract.pdf"] = b"%PDF contract"
    async with await admin(app) as http:
        instance = await add_channel(http, "vk", vk_config())
        async with httpx.AsyncClient(base_url=app.http, timeout=30) as client:
            await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=fixture("vk", "doc", secret=SECRET))
        m = await only_message(http)
        assert [(a["name"], a["size"]) for a in m["attachments"]] == [("contract.pdf", len(b"%PDF contract"))]


async def test_telegram_files_come_only_from_an_allowed_bot_api_host(app: AppServer) -> None:
    async with FakeBotApi() as tg, await admin(app) as http:
        tg.add_file("AgACAgIAAxkBAAIBlarge", b"\xff\xd8\xff\xe0large-jpeg")
        instance = await add_channel(http, "telegram", {
            "token": TOKEN, "bot_username": "support_test_bot", "api_base": tg.base, "mode": "webhook",
            "webhook_secret": "s3cret-token-for-webhook-calls"})
        async with httpx.AsyncClient(base_url=app.http, timeout=30) as client:
            r = await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=fixture("telegram", "photo"),
                                  headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token-for-webhook-calls"})
            assert r.status_code == 200
        m = await only_message(http)
        assert m["attachments"] == []
        assert m["text"] == ("This is what arrived\n"
                             "[photo.jpg: not downloaded: 127.0.0.1 is not one of the service's file hosts]")


async def test_a_wildcard_host_that_resolves_to_a_private_address_is_refused() -> None:
    policy = DownloadPolicy(("*.0.0.1", "files.vk.ru"))
    with pytest.raises(DownloadRefused, match="private address"):
        await policy.check("http://127.0.0.1/x")
    with pytest.raises(DownloadRefused, match="not one of"):
        await policy.check("https://files.vk.ru.evil.example/x")
    with pytest.raises(DownloadRefused, match="not a web address"):
        await policy.check("file:///etc/passwd")
    await policy.check("https://files.vk.ru/doc/1")  # named exactly: allowed
