"""Nothing a Telegram customer sends is lost: updates aiogram's models refuse, media with
captions, shared contacts, places, hidden links, forwards and replies, and /start links that
do not work all reach the inbox with what they carried."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.appserver import AppServer
from tests.channel_helpers import add_channel, admin, eventually, fixture, only_thread
from tests.fakes.telegram_api import TOKEN, FakeBotApi
from tests.harness import visitor

pytestmark = pytest.mark.anyio

SECRET = "s3cret-token-for-webhook-calls"


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[AppServer]:
    async with AppServer(tmp_path, db_url) as server:
        yield server


def tg_config(tg: FakeBotApi, **extra: Any) -> dict[str, Any]:
    return {"token": TOKEN, "bot_username": "support_test_bot", "api_base": tg.base, "mode": "webhook",
            "webhook_secret": SECRET, **extra}


@pytest.fixture
async def bot(app: AppServer, tg: FakeBotApi) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    async with await admin(app) as http:
        yield http, await add_channel(http, "telegram", tg_config(tg))


async def post(app: AppServer, instance: dict[str, Any], update: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=app.http, timeout=30) as http:
        r = await http.post(f"/api/v1/channels/{instance['id']}/webhook", json=update,
                            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert r.status_code == 200, r.text


async def one_message(http: httpx.AsyncClient) -> dict[str, Any]:
    _, messages = await only_thread(http)
    [m] = [m for m in messages if m["kind"] == "text"]
    return m


async def card(http: httpx.AsyncClient) -> dict[str, Any]:
    conv_id, _ = await only_thread(http)
    contact_id = (await http.get(f"/conversations/{conv_id}")).json()["contact"]["id"]
    return (await http.get(f"/contacts/{contact_id}")).json()  # type: ignore[no-any-return]


# --- 5. an update the library's model refuses still yields the customer's words ---------------


async def test_an_update_with_an_unknown_forward_origin_keeps_text_and_photo(bot: Any, app: AppServer,
                                                                             tg: FakeBotApi) -> None:
    http, instance = bot
    tg.add_file("AgACAgIAAxkBAAIBurgent", b"\xff\xd8\xff\xe0receipt")
    update = fixture("telegram", "forward_unknown_origin")
    await post(app, instance, update)
    m = await one_message(http)
    assert m["text"].startswith("[forwarded from Shop news]\nURGENT: please refund order 4521")
    assert "partly understood" in m["text"]
    assert [(a["content_type"], a["size"]) for a in m["attachments"]] == [("image/jpeg", len(b"\xff\xd8\xff\xe0receipt"))]
    original = (await http.get(f"/messages/{m['id']}/original")).json()
    assert original["raw"] == update and "forward_origin" in original["partly_understood"]


async def test_a_poll_from_an_older_bot_api_server_is_read_leniently(bot: Any, app: AppServer) -> None:
    http, instance = bot
    await post(app, instance, fixture("telegram", "poll_old_server"))
    m = await one_message(http)
    assert m["text"].startswith("[poll: Which size fits? — M / L]")
    assert (await http.get(f"/messages/{m['id']}/original")).json()["partly_understood"]


async def test_long_polling_keeps_going_past_an_update_the_model_refuses(tmp_path: Path, db_url: str,
                                                                         tg: FakeBotApi) -> None:
    async with AppServer(tmp_path, db_url) as app, await admin(app) as http:
        await add_channel(http, "telegram", tg_config(tg, mode="polling", poll_timeout=1))
        refused = fixture("telegram", "forward_unknown_origin")
        del refused["message"]["photo"]
        refused["message"]["text"] = refused["message"].pop("caption")
        tg.queue_update(refused)
        tg.queue_update(fixture("telegram", "text"))

        async def both() -> list[str] | None:
            convs = (await http.get("/conversations")).json()["items"]
            if not convs:
                return None
            _, messages = await only_thread(http)
            return [m["text"] for m in messages] if len(messages) == 2 else None
        texts = await eventually(both, what="both polled updates stored")
        assert texts[0].startswith("[forwarded from Shop news]\nURGENT: please refund order 4521")
        assert texts[1] == "Hello, I have a question about my order"


# --- 6. what the payload carries is kept --------------------------------------------------------


async def test_a_video_with_a_caption_is_named_when_the_store_refuses_it(bot: Any, app: AppServer,
                                                                         tg: FakeBotApi) -> None:
    http, instance = bot
    tg.add_file("BAACAgIAAxkBAAIBvideo", b"\x00\x00\x00\x18ftypmp42")
    await post(app, instance, fixture("telegram", "video"))
    m = await one_message(http)
    assert m["text"].startswith("How it looks after a week\n[after_a_week.mp4: not kept: ")


async def test_an_audio_with_a_caption_keeps_the_file(bot: Any, app: AppServer, tg: FakeBotApi) -> None:
    http, instance = bot
    tg.add_file("CQACAgIAAxkBAAIBaudio", b"ID3\x04mp3-noise")
    await post(app, instance, fixture("telegram", "audio"))
    m = await one_message(http)
    assert m["text"] == "The noise it makes"
    assert [(a["name"], a["content_type"]) for a in m["attachments"]] == [("noise.mp3", "audio/mpeg")]


async def test_sharing_my_phone_puts_it_on_the_card(bot: Any, app: AppServer) -> None:
    http, instance = bot
    await post(app, instance, fixture("telegram", "contact_own"))
    m = await one_message(http)
    assert m["text"] == "[contact: Ivan Petrov, 79161234567]"
    c = await card(http)
    assert c["contact"]["phone"] == "+79161234567"
    assert ("phone", "+79161234567") in [(i["kind"], i["value"]) for i in c["identities"]]


async def test_someone_elses_contact_is_shown_but_not_taken_as_theirs(bot: Any, app: AppServer) -> None:
    http, instance = bot
    await post(app, instance, fixture("telegram", "contact_other"))
    assert (await one_message(http))["text"] == "[contact: Olga, +7 903 000-11-22]"
    c = await card(http)
    assert c["contact"]["phone"] is None and {i["kind"] for i in c["identities"]} == {"telegram"}


async def test_a_shared_phone_another_card_has_joins_the_two(bot: Any, app: AppServer) -> None:
    http, instance = bot
    await post(app, instance, fixture("telegram", "contact_own"))
    first = await card(http)
    other = fixture("telegram", "contact_own")
    other["update_id"] += 100
    other["message"]["message_id"] += 100
    other["message"]["from"] = {**other["message"]["from"], "id": 999888777}
    other["message"]["chat"] = {**other["message"]["chat"], "id": 999888777}
    other["message"]["contact"]["user_id"] = 999888777
    await post(app, instance, other)
    # The same number from a second Telegram account: one person, one card.
    convs = (await http.get("/conversations")).json()["items"]
    assert len(convs) == 1
    joined = await card(http)
    assert joined["contact"]["id"] == first["contact"]["id"]
    assert {(i["kind"], i["value"]) for i in joined["identities"]} >= {
        ("telegram", "111222333"), ("telegram", "999888777"), ("phone", "+79161234567")}
    assert any("phone number" in merge["reason"] for merge in joined["merges"])


async def test_location_and_venue_keep_coordinates_and_address(bot: Any, app: AppServer) -> None:
    http, instance = bot
    await post(app, instance, fixture("telegram", "venue"))
    m = await one_message(http)
    assert m["text"].startswith("[venue: Pickup point 12, Tverskaya 1, Moscow 55.7558, 37.6173 https://")


# --- 8. hidden links, forwards and replies -----------------------------------------------------


async def test_hidden_links_forwards_and_replies_are_kept_in_the_text(bot: Any, app: AppServer) -> None:
    http, instance = bot
    await post(app, instance, fixture("telegram", "text_link_forward_reply"))
    assert (await one_message(http))["text"] == (
        "[forwarded from Olga K]\n[in reply to: “Which item do you mean?”]\n"
        "See this 😀 page (https://shop.example/item/4521) please")


# --- 7. a /start link that does not work still shows the person ---------------------------------


async def test_start_with_a_bad_token_gets_a_conversation_and_says_why(bot: Any, app: AppServer) -> None:
    http, instance = bot
    await post(app, instance, fixture("telegram", "start_token", token="not-a-real-token-0000000000000000000000"))
    _, messages = await only_thread(http)
    assert [(m["kind"], m["text"]) for m in messages][0] == ("text", "/start")
    assert any(m["kind"] == "system" and "expired, already used or not ours" in m["text"] for m in messages)


async def test_start_with_a_spent_token_gets_a_conversation_too(bot: Any, app: AppServer) -> None:
    http, instance = bot
    _site, welcome = await visitor(app)
    async with httpx.AsyncClient(base_url=app.http, timeout=30) as client:
        r = await client.get("/api/v1/widget/channel-links", headers={"Authorization": f"Visitor {welcome['token']}"})
    token = r.json()["links"][0]["url"].split("start=")[1]
    first = fixture("telegram", "start_token", token=token)
    await post(app, instance, first)  # the visitor never wrote: their Telegram /start is the thread
    again = fixture("telegram", "start_token", token=token)
    again["update_id"] += 1
    again["message"]["message_id"] += 1
    again["message"]["from"] = {**again["message"]["from"], "id": 222333444}
    again["message"]["chat"] = {**again["message"]["chat"], "id": 222333444}
    await post(app, instance, again)  # someone replaying the spent link
    convs = (await http.get("/conversations")).json()["items"]
    assert len(convs) == 2
    await _site.close()
