"""VK community messages through vk-api against a local VK API mounted on its sessions:
Callback API and Bots Long Poll in, messages.send out, each message type, retries, reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from chat_server.channels import default_adapters
from integrations.base import OutboundAttachment, OutboundMessage
from integrations.vk import VkAdapter, VkConfig
from tests.appserver import AppServer
from tests.channel_fakes import fake_vk_registry
from tests.channel_helpers import add_channel, admin, eventually, fixture, only_thread, thread
from tests.fakes.vk_api import GROUP_ID, TOKEN, FakeVk
from tests.harness import visitor

pytestmark = pytest.mark.anyio

SECRET = "vk-callback-secret"


def vk_config(**extra: Any) -> dict[str, Any]:
    return {"token": TOKEN, "group_id": GROUP_ID, "mode": "callback", "confirmation": "3f2a9c1b",
            "secret": SECRET, "screen_name": "acme_support", **extra}


@pytest.fixture
async def app(tmp_path: Path, db_url: str, vk: FakeVk) -> AsyncIterator[AppServer]:
    async with AppServer(tmp_path, db_url, fake_vk_registry(vk)) as server:
        yield server


@pytest.fixture
async def community(app: AppServer) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    async with await admin(app) as http:
        yield http, await add_channel(http, "vk", vk_config())


async def callback(app: AppServer, instance: dict[str, Any], name: str, **replace: str) -> httpx.Response:
    event = fixture("vk", name, **{"secret": SECRET, **replace})
    async with httpx.AsyncClient(base_url=app.http) as http:
        return await http.post(f"/api/v1/channels/{instance['id']}/webhook", json=event)


async def messages(http: httpx.AsyncClient, count: int = 1) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        convs = (await http.get("/conversations")).json()["items"]
        if not convs:
            return None
        items = await thread(http, convs[0]["id"])
        return items if len(items) >= count else None
    return await eventually(probe, what=f"{count} stored message(s)")


async def test_confirmation_answers_the_confirmation_string(community: Any, app: AppServer) -> None:
    _, instance = community
    async with httpx.AsyncClient(base_url=app.http) as http:
        r = await http.post(f"/api/v1/channels/{instance['id']}/webhook", json=fixture("vk", "confirmation"))
    assert (r.status_code, r.text) == (200, "3f2a9c1b")


async def test_wrong_secret_is_refused_and_stores_nothing(community: Any, app: AppServer) -> None:
    http, instance = community
    r = await callback(app, instance, "text", secret="guess")
    assert r.status_code == 403 and r.text != "ok"
    event = fixture("vk", "text", secret=SECRET)
    event["group_id"] = 1
    async with httpx.AsyncClient(base_url=app.http) as client:
        assert (await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=event)).status_code == 403
    assert (await http.get("/conversations")).json()["items"] == []


async def test_text_answers_ok_and_fetches_the_name_once(community: Any, app: AppServer, vk: FakeVk) -> None:
    http, instance = community
    r = await callback(app, instance, "text")
    assert (r.status_code, r.text) == (200, "ok")
    [m] = await messages(http)
    assert (m["channel"], m["text"]) == ("vk", "Здравствуйте! Где мой заказ?")
    conv_id, _ = await only_thread(http)
    contact_id = (await http.get(f"/conversations/{conv_id}")).json()["contact"]["id"]
    card = (await http.get(f"/contacts/{contact_id}")).json()
    assert card["contact"]["name"] == "Мария Иванова"
    assert [(i["kind"], i["value"]) for i in card["identities"]] == [("vk", "55501")]
    vk.files["/photo_w.jpg"] = b"\xff\xd8\xffbig"
    await callback(app, instance, "photo")
    await messages(http, 2)
    assert [name for name, _ in vk.calls].count("users.get") == 1


async def test_retried_callback_is_stored_once(community: Any, app: AppServer) -> None:
    http, instance = community
    for _ in range(3):
        assert (await callback(app, instance, "text")).text == "ok"
    await messages(http)
    async with httpx.AsyncClient(base_url=app.http) as client:
        await client.get("/readyz")
    conv_id, items = await only_thread(http)
    assert len(items) == 1


async def test_callbacks_out_of_order_and_repeated_are_each_stored_once(community: Any, app: AppServer) -> None:
    # VK retries a callback it got no "ok" for, after later events went through.
    http, instance = community

    async def send(n: int) -> None:
        event = fixture("vk", "text", secret=SECRET)
        event["event_id"] = f"ev{300 + n}"
        event["object"]["message"].update(id=300 + n, conversation_message_id=300 + n, text=f"часть {n}")
        async with httpx.AsyncClient(base_url=app.http) as client:
            assert (await client.post(f"/api/v1/channels/{instance['id']}/webhook", json=event)).text == "ok"
    for n in (3, 1, 3, 2, 1):
        await send(n)
    items = await messages(http, 3)
    assert [m["text"] for m in items] == ["часть 3", "часть 1", "часть 2"]
    _, items = await only_thread(http)
    assert len(items) == 3


async def test_photo_keeps_the_largest_size(community: Any, app: AppServer, vk: FakeVk) -> None:
    http, instance = community
    vk.files["/photo_w.jpg"] = b"\xff\xd8\xffbig"
    vk.files["/photo_s.jpg"] = b"\xff\xd8\xffs"
    await callback(app, instance, "photo")
    [m] = await messages(http)
    assert m["text"] == "вот фото"
    assert [(a["content_type"], a["size"]) for a in m["attachments"]] == [("image/jpeg", len(b"\xff\xd8\xffbig"))]


async def test_a_file_that_cannot_be_downloaded_leaves_the_message_with_a_note(community: Any, app: AppServer) -> None:
    http, instance = community
    await callback(app, instance, "photo")  # the fake has no such file: 404
    [m] = await messages(http)
    assert m["text"] == "вот фото\n[photo.jpg: could not be downloaded]" and m["attachments"] == []


async def test_document_keeps_its_title(community: Any, app: AppServer, vk: FakeVk) -> None:
    http, instance = community
    vk.files["/doc/contract.pdf"] = b"%PDF contract"
    await callback(app, instance, "doc")
    [m] = await messages(http)
    assert [(a["name"], a["content_type"], a["size"]) for a in m["attachments"]] == [
        ("contract.pdf", "application/pdf", len(b"%PDF contract"))]


async def test_sticker_becomes_an_image(community: Any, app: AppServer, vk: FakeVk) -> None:
    http, instance = community
    vk.files["/sticker_512.png"] = b"\x89PNG\r\n\x1a\n512"
    await callback(app, instance, "sticker")
    [m] = await messages(http)
    assert [(a["content_type"], a["size"]) for a in m["attachments"]] == [("image/png", len(b"\x89PNG\r\n\x1a\n512"))]


async def test_group_chat_messages_are_not_customer_messages(community: Any, app: AppServer) -> None:
    http, instance = community
    assert (await callback(app, instance, "chat_message")).text == "ok"
    await callback(app, instance, "text")  # processed after: proves the first one was handled
    [m] = await messages(http)
    assert m["text"] == "Здравствуйте! Где мой заказ?"


async def test_reply_uses_messages_send_and_a_read_event_marks_it_read(community: Any, app: AppServer,
                                                                       vk: FakeVk) -> None:
    http, instance = community
    await callback(app, instance, "text")
    await messages(http)
    conv_id, _ = await only_thread(http)
    r = await http.post(f"/conversations/{conv_id}/messages", json={"text": "Заказ в пути"})
    reply = r.json()["message"]

    async def state(*states: str) -> Any:
        return [m for m in await thread(http, conv_id) if m["id"] == reply["id"] and m["delivery_state"] in states]
    await eventually(lambda: state("sent"), what="sent")
    assert [(s.peer_id, s.text, s.random_id) for s in vk.sent] == [(55501, "Заказ в пути", reply["id"])]
    await callback(app, instance, "message_read")  # read_message_id 5000: the first id the fake hands out
    await eventually(lambda: state("read"), what="read")


async def test_flood_control_is_retried_and_sends_once(community: Any, app: AppServer, vk: FakeVk) -> None:
    http, instance = community
    await callback(app, instance, "text")
    await messages(http)
    conv_id, _ = await only_thread(http)
    vk.fail_next("messages.send", 9, "Flood control")
    reply = (await http.post(f"/conversations/{conv_id}/messages", json={"text": "Секунду"})).json()["message"]

    async def sent() -> Any:
        return [m for m in await thread(http, conv_id) if m["id"] == reply["id"] and m["delivery_state"] == "sent"]
    await eventually(sent, what="sent after flood control")
    assert len(vk.sent) == 1


async def test_a_repeated_send_of_one_message_reaches_the_person_once(vk: FakeVk) -> None:
    adapter = VkAdapter(session_hook=vk.mount_on)
    config = VkConfig.model_validate(vk_config())
    first = await adapter.send(config, OutboundMessage(message_id=41, recipient="55501", text="once"))
    again = await adapter.send(config, OutboundMessage(message_id=41, recipient="55501", text="once"))
    assert first.external_id == again.external_id
    assert len(vk.sent) == 1


async def test_attachments_are_uploaded_as_documents(vk: FakeVk) -> None:
    adapter = VkAdapter(session_hook=vk.mount_on)
    config = VkConfig.model_validate(vk_config())
    await adapter.send(config, OutboundMessage(message_id=42, recipient="55501", text="see attached",
                                               attachments=[OutboundAttachment("a.pdf", "application/pdf", b"%PDF")]))
    assert len(vk.uploads) == 1 and b"%PDF" in vk.uploads[0][1]
    assert vk.sent[0].attachment == f"doc-{GROUP_ID}_77"


async def test_long_poll_mode_stores_messages(tmp_path: Path, db_url: str, vk: FakeVk) -> None:
    async with AppServer(tmp_path, db_url, fake_vk_registry(vk)) as app, await admin(app) as http:
        await add_channel(http, "vk", vk_config(mode="longpoll", wait=1))
        vk.queue_event(fixture("vk", "text", secret=""))
        [m] = await messages(http)
        assert m["text"] == "Здравствуйте! Где мой заказ?"


def test_default_adapters_cover_the_three_channels() -> None:
    assert sorted(default_adapters().channels()) == ["email", "telegram", "vk"]


async def test_ref_from_the_widget_link_joins_the_visitor(community: Any, app: AppServer) -> None:
    http, instance = community
    site, welcome = await visitor(app)
    await site.send(type="message.send", text="Hi from the site", client_msg_id="v1")
    await site.expect("ack")
    async with httpx.AsyncClient(base_url=app.http) as client:
        r = await client.get("/api/v1/widget/channel-links", headers={"Authorization": f"Visitor {welcome['token']}"})
    [link] = r.json()["links"]
    token = parse_qs(urlsplit(link["url"]).query)["ref"][0]
    assert link["url"].startswith("https://vk.me/acme_support?ref=")
    await callback(app, instance, "ref", token=token)  # the first message after following vk.me/...?ref=
    await callback(app, instance, "text")

    async def texts() -> list[tuple[str, str]] | None:
        items = [(m["channel"], m["text"]) for m in await messages(http) if m["kind"] == "text"]
        return items if len(items) == 2 else None
    assert await eventually(texts, what="both messages in one thread") == [
        ("widget", "Hi from the site"), ("vk", "Здравствуйте! Где мой заказ?")]
    conv_id, _ = await only_thread(http)
    contact_id = (await http.get(f"/conversations/{conv_id}")).json()["contact"]["id"]
    card = (await http.get(f"/contacts/{contact_id}")).json()
    assert {i["kind"] for i in card["identities"]} == {"visitor", "vk"}
    assert any("continue in VK" in m["reason"] for m in card["merges"])
    await site.close()
