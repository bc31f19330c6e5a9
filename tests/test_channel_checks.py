"""Channel credentials are checked against the service before they are saved: Telegram's
getMe, VK's groups.getById, an SMTP and an IMAP login. A wrong token, password or host is
refused with a 422 that says which, and nothing is stored. Each instance shows its state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tests.appserver import AppServer
from tests.channel_fakes import fake_vk_registry
from tests.channel_helpers import admin, eventually, fixture
from tests.fakes.telegram_api import TOKEN, FakeBotApi
from tests.fakes.vk_api import GROUP_ID, FakeVk
from tests.fakes.vk_api import TOKEN as VK_TOKEN
from tests.mailservers import PASSWORD, USER, DovecotServer, SmtpSink
from tests.services import free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def vk() -> FakeVk:
    return FakeVk()


@pytest.fixture
async def app(tmp_path: Path, db_url: str, vk: FakeVk) -> AsyncIterator[AppServer]:
    registry = fake_vk_registry(vk)
    # Replies that fail wait a long time before their next try, so the queue can be seen.
    async with AppServer(tmp_path, db_url, registry, outbound_retry_seconds=600) as server:
        yield server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def sink(ca: trustme.CA) -> Iterator[SmtpSink]:
    with SmtpSink(ca) as server:
        yield server


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    with DovecotServer() as server:
        yield server


async def refused(http: httpx.AsyncClient, code: str, body: dict[str, Any], *words: str) -> str:
    r = await http.post("/channels", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == code, error
    for word in words:
        assert word in error["message"], (word, error["message"])
    return str(error["message"])


async def nothing_saved(http: httpx.AsyncClient) -> None:
    assert (await http.get("/channels")).json()["items"] == []


async def test_a_bot_token_is_checked_with_get_me(app: AppServer, tg: FakeBotApi) -> None:
    def bot(**config: Any) -> dict[str, Any]:
        return {"channel": "telegram", "name": "Support bot", "config": {"api_base": tg.base, **config}}

    async with await admin(app) as http:
        await refused(http, "token_refused", bot(token="7000001:AAE_a-token-that-was-revoked-long-ago"),
                      "Telegram refused this bot token", "@BotFather")
        dead = f"http://127.0.0.1:{free_port()}"
        await refused(http, "service_unreachable", {**bot(token=TOKEN), "config": {"token": TOKEN, "api_base": dead}},
                      "could not be reached", dead.removeprefix("http://"))
        await nothing_saved(http)

        # The right token: saved, its username learned from getMe (none was given).
        r = await http.post("/channels", json=bot(token=TOKEN))
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["config"]["bot_username"] == "support_test_bot"
        assert created["config"]["token"] == "••••" + TOKEN[-4:] and TOKEN not in r.text
        assert (created["state"], created["queue_length"], created["last_error"]) == ("connected", 0, None)

        # A wrong token in an edit is refused too, and the stored one stays.
        r = await http.patch(f"/channels/{created['id']}", json={"config": {"token": "7000001:AAE_another-wrong-token"}})
        assert r.status_code == 422 and r.json()["error"]["code"] == "token_refused", r.text
        stored = (await http.get(f"/channels/{created['id']}")).json()
        assert stored["config"]["token"] == "••••" + TOKEN[-4:]
        # An edit that does not touch the token keeps it, unseen.
        r = await http.patch(f"/channels/{created['id']}", json={"name": "Sales bot", "config": {
            **stored["config"], "poll_timeout": 3}})
        assert r.status_code == 200 and r.json()["config"]["token"] == "••••" + TOKEN[-4:], r.text

        # Pause and resume.
        r = await http.patch(f"/channels/{created['id']}", json={"enabled": False})
        assert (r.json()["enabled"], r.json()["state"]) == (False, "paused")
        r = await http.patch(f"/channels/{created['id']}", json={"enabled": True})
        assert (r.json()["enabled"], r.json()["state"]) == (True, "connected")

        # A webhook Telegram would not take: saved (the token works), shown as failing.
        tg.fail_next("setWebhook", {"error_code": 400, "description": "Bad Request: bad webhook: HTTPS url must be provided"})
        r = await http.post("/channels", json=bot(token=TOKEN, mode="webhook", public_url="http://chat.example.com"))
        assert r.status_code == 400 and r.json()["error"]["code"] == "webhook_registration_failed", r.text

        async def failing() -> list[dict[str, Any]]:
            return [i for i in (await http.get("/channels")).json()["items"] if i["state"] == "failing"]
        [hooked] = await eventually(failing, what="the failed registration shown")
        assert "HTTPS url must be provided" in hooked["last_error"] and hooked["config"]["mode"] == "webhook"


async def test_a_community_token_is_checked_with_groups_get_by_id(app: AppServer, vk: FakeVk) -> None:
    def community(**config: Any) -> dict[str, Any]:
        return {"channel": "vk", "name": "Community", "config": {"token": VK_TOKEN, "group_id": GROUP_ID, **config}}

    async with await admin(app) as http:
        await refused(http, "token_refused", community(token="vk1.a.a-token-vk-does-not-know"),
                      "VK refused this token", "API usage")
        await refused(http, "wrong_community", community(group_id=12345), "Acme Support", str(GROUP_ID), "12345")
        vk.fail_next("groups.getLongPollServer", 100, "Long Poll is disabled for this community")
        await refused(http, "longpoll_disabled", community(), "Long Poll API")
        await nothing_saved(http)

        r = await http.post("/channels", json=community())
        assert r.status_code == 201, r.text
        assert r.json()["config"]["screen_name"] == "acme_support" and VK_TOKEN not in r.text
        # The Callback API needs no Long Poll: only the token is asked about.
        r = await http.post("/channels", json=community(mode="callback", secret="cb-secret", confirmation="ok1"))
        assert r.status_code == 201, r.text
        assert [name for name, _ in vk.calls].count("groups.getById") == 5


async def test_a_mailbox_is_checked_with_an_smtp_and_an_imap_login(
        app: AppServer, sink: SmtpSink, ca: trustme.CA, dovecot: DovecotServer, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    right = {"address": USER, "smtp_host": "127.0.0.1", "smtp_port": sink.port, "smtp_security": "starttls",
             "smtp_username": "smtp-user", "smtp_password": "smtp-password", "ca_file": str(ca_file),
             "imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_security": "none",
             "imap_username": USER, "imap_password": PASSWORD}

    def mailbox(**config: Any) -> dict[str, Any]:
        return {"channel": "email", "name": "Support mailbox", "config": {**right, **config}}

    async with await admin(app) as http:
        await refused(http, "smtp_login_refused", mailbox(smtp_password="not-the-password"),
                      "SMTP server 127.0.0.1 refused the login of 'smtp-user'", "535")
        closed = free_port()
        await refused(http, "smtp_unreachable", mailbox(smtp_port=closed), f"127.0.0.1:{closed}", "connection refused")
        await refused(http, "smtp_unreachable", mailbox(smtp_host="smtp.nowhere.invalid"), "smtp.nowhere.invalid")
        await refused(http, "smtp_tls_failed", mailbox(ca_file=""), "secure connection", str(sink.port))
        await refused(http, "imap_login_refused", mailbox(imap_password="wrong"),
                      f"IMAP server 127.0.0.1 refused the login of '{USER}'")
        await refused(http, "imap_unreachable", mailbox(imap_port=closed), f"127.0.0.1:{closed}")
        await refused(http, "imap_folder_missing", mailbox(imap_folder="Support"), "no folder 'Support'")
        await nothing_saved(http)
        assert sink.received == []

        r = await http.post("/channels", json=mailbox())
        assert r.status_code == 201, r.text
        assert "smtp-password" not in r.text and PASSWORD not in r.text
        # A wrong password in an edit is refused; the stored one stays and still works.
        r = await http.patch(f"/channels/{r.json()['id']}", json={"config": {"imap_password": "wrong"}})
        assert r.status_code == 422 and r.json()["error"]["code"] == "imap_login_refused", r.text
        [instance] = (await http.get("/channels")).json()["items"]
        r = await http.patch(f"/channels/{instance['id']}", json={"config": {**instance["config"], "poll_seconds": 30}})
        assert r.status_code == 200, r.text


async def test_the_state_shows_updates_failures_and_the_outgoing_queue(app: AppServer, tg: FakeBotApi) -> None:
    async with await admin(app) as http:
        r = await http.post("/channels", json={"channel": "telegram", "name": "bot", "config": {
            "token": TOKEN, "api_base": tg.base, "poll_timeout": 1}})
        assert r.status_code == 201, r.text
        url = f"/channels/{r.json()['id']}"
        assert r.json()["last_update_at"] is None

        async def view(**expected: Any) -> dict[str, Any] | None:
            got = (await http.get(url)).json()
            return got if all((got[k] is not None) if v is ... else got[k] == v for k, v in expected.items()) else None

        tg.queue_update(fixture("telegram", "text"))
        heard = await eventually(lambda: view(last_update_at=...), what="the update recorded")
        assert heard["state"] == "connected"

        # The Bot API fails the poll: the instance is failing, with the reason.
        tg.fail_next("getUpdates", {"error_code": 502, "description": "Bad Gateway"})
        failing = await eventually(lambda: view(state="failing"), what="the failure recorded")
        assert "getUpdates failed" in failing["last_error"] and failing["last_error_at"]
        # It recovers by itself on the next poll.
        await eventually(lambda: view(state="connected"), within=20, what="the recovery recorded")

        # A reply that cannot leave waits in the queue, and says why.
        tg.fail_next("sendMessage", {"error_code": 502, "description": "Bad Gateway"})
        conv = (await http.get("/conversations")).json()["items"][0]
        r = await http.post(f"/conversations/{conv['id']}/messages", json={"text": "We are on it"})
        assert r.status_code == 201, r.text
        waiting = await eventually(lambda: view(queue_length=1, state="failing"), what="the reply queued")
        assert waiting["last_error"].startswith("sending: ") and "Bad Gateway" in waiting["last_error"]
        listed = (await http.get("/channels")).json()["items"]
        assert [(i["queue_length"], i["state"]) for i in listed] == [(1, "failing")]
