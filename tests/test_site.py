"""Site settings, the widget's public config, CORS, identify and tracked system properties,
over real HTTP and sockets on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
import websockets

from tests.harness import ChatServer, Socket, api, create_operator, login, visitor

pytestmark = pytest.mark.anyio


async def saw(sock: Socket, frame_type: str, **match: Any) -> dict[str, Any]:
    """A frame already received while waiting for another, or the next one."""
    for frame in sock.seen:
        target = frame.get("message", frame)
        if frame["type"] == frame_type and all(target.get(k) == v for k, v in match.items()):
            return frame
    return await sock.expect(frame_type, **match)


async def test_site_settings_are_for_admins_and_never_show_the_secret(server: ChatServer) -> None:
    admin = await login(server)
    plain = await create_operator(server, admin, f"op-{uuid.uuid4().hex[:6]}@example.com")
    async with api(server, plain) as http:
        assert (await http.get("/site")).status_code == 403
        assert (await http.patch("/site", json={"color": "#000000"})).status_code == 403
    async with api(server, admin) as http:
        site = (await http.get("/site")).json()
        assert site["identity_secret_set"] is False and site["snippet"].endswith(
            f'/widget.js" data-site="{site["site_key"]}" async></script>')
        for bad, code in [
            ({"allowed_origins": ["shop.example"]}, "invalid_origin"),
            ({"allowed_origins": ["https://shop.example/path"]}, "invalid_origin"),
            ({"identity_secret": "short"}, "weak_secret"),
            ({"color": "red"}, "invalid_color"),
            ({"texts": {"de": {"title": "Hallo"}}}, "invalid_texts"),
            ({"texts": {"en": {"nonsense": "x"}}}, "invalid_texts"),
            ({"texts": {"en": {"title": 5}}}, "invalid_texts"),
        ]:
            r = await http.patch("/site", json=bad)
            assert r.status_code == 400 and r.json()["error"]["code"] == code, (bad, r.text)
        assert (await http.patch("/site", json={"unknown": 1})).status_code == 422
        assert (await http.patch("/site", json={"language": "de"})).status_code == 422
        assert (await http.get("/site")).json() == site  # refused changes changed nothing

        secret = "s3cret-" + uuid.uuid4().hex
        r = await http.patch("/site", json={"identity_secret": secret, "color": "#10b981", "language": "ru",
                                            "texts": {"ru": {"title": "Чат Acme"}},
                                            "allowed_origins": ["https://shop.example/", "https://shop.example"]})
        assert r.status_code == 200, r.text
        changed = r.json()
        assert secret not in r.text and changed["identity_secret_hint"] == "…" + secret[-4:]
        assert changed["allowed_origins"] == ["https://shop.example"]
        config = await http.get("/widget/config", params={"site": site["site_key"]})
        assert config.json() == {"site_key": site["site_key"], "color": "#10b981", "language": "ru",
                                 "texts": {"ru": {"title": "Чат Acme"}}, "identity_verification": True}
        assert secret not in config.text
        assert (await http.get("/widget/config", params={"site": "wrong"})).status_code == 404
        rotated = (await http.patch("/site", json={"rotate_site_key": True})).json()
        assert rotated["site_key"] != site["site_key"] and rotated["color"] == "#10b981"
        restored = await http.patch("/site", json={"identity_secret": "", "language": "auto", "texts": {},
                                                   "allowed_origins": []})
        assert restored.json()["identity_secret_set"] is False


async def test_site_origins_open_the_widget_socket_and_cors_only_on_widget_paths(server: ChatServer) -> None:
    admin = await login(server)
    url = server.ws + "/ws/widget"
    origin = f"https://shop-{uuid.uuid4().hex[:6]}.example"
    async with websockets.connect(url, origin=origin) as ws:  # type: ignore[arg-type]
        assert json.loads(await ws.recv())["code"] == "origin_not_allowed"
    async with api(server, admin) as http:
        assert (await http.patch("/site", json={"allowed_origins": [origin]})).status_code == 200
    try:
        async with websockets.connect(url, origin=origin) as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"type": "hello"}))
            assert json.loads(await ws.recv())["type"] == "welcome"
    finally:
        async with api(server, admin) as http:
            await http.patch("/site", json={"allowed_origins": []})
    async with httpx.AsyncClient(base_url=server.http) as http:
        pre = await http.options("/api/v1/widget/attachments", headers={
            "origin": origin, "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "*"
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        js = await http.get("/widget.js", headers={"origin": origin})
        assert js.status_code == 200 and js.headers["access-control-allow-origin"] == "*"
        assert js.headers["content-type"].startswith("text/javascript")
        panel = await http.get("/widget/panel.js")
        assert panel.status_code == 200 and panel.headers["access-control-allow-origin"] == "*"
        staff = await http.get("/api/v1/me", headers={"origin": origin})
        assert "access-control-allow-origin" not in staff.headers  # the inbox API is not for other sites
        assert (await http.get("/demo/")).status_code == 200
        assert (await http.get("/demo/nope")).status_code == 404


async def test_identify_without_secret_merges_and_refuses_two_different_users(server: ChatServer) -> None:
    admin = await login(server)
    user = f"user-{uuid.uuid4().hex[:8]}"
    first, _ = await visitor(server)
    await first.send(type="identify", user_id=user, name="Ann", properties={"plan": "pro"})
    assert (await first.expect("identified"))["merged"] is False
    await first.send(type="message.send", client_msg_id="f1", text="from the laptop")
    await first.expect("ack")
    second, _ = await visitor(server)
    await second.send(type="message.send", client_msg_id="s1", text="from the phone")
    await second.expect("ack")
    await second.send(type="identify", user_id=user)
    assert (await second.expect("identified"))["merged"] is True
    await saw(second, "reset")  # the merge's news may come before or after `identified`
    await saw(second, "message", text="from the laptop")
    await second.send(type="message.send", client_msg_id="s2", text="after identify")
    await second.expect("ack", client_msg_id="s2")
    await first.expect("message", text="after identify")  # one contact, one thread, both devices

    other = f"user-{uuid.uuid4().hex[:8]}"
    third, _ = await visitor(server)
    await third.send(type="identify", user_id=other)
    await third.expect("identified")
    await third.send(type="identify", user_id=user)
    assert (await third.expect("error"))["code"] == "different_user"
    for bad, code in (({"email": "not-an-email"}, "invalid_email"), ({"user_id": "x\u0000y"}, "invalid_frame")):
        await third.send(type="identify", **bad)
        assert (await third.expect("error"))["code"] == code
    await third.send(type="identify", name="x" * 201)
    assert (await third.expect("error"))["code"] == "invalid_frame"
    async with api(server, admin) as http:
        found = (await http.get("/contacts", params={"q": "Ann"})).json()["items"]
        ann = next(c for c in found if c["properties"].get("plan") == "pro")
        card = (await http.get(f"/contacts/{ann['id']}")).json()
    kinds = sorted(i["kind"] for i in card["identities"])
    assert kinds == ["user_id", "visitor", "visitor"]
    for sock in (first, second, third):
        await sock.close()


async def test_tracked_events_keep_the_card_current(server: ChatServer) -> None:
    admin = await login(server)
    name = f"tracked-{uuid.uuid4().hex[:8]}"
    v, _ = await visitor(server, page={"url": "https://shop.example/?utm_source=ads&utm_medium=cpc", "referrer":
                                       "https://search.example/q", "title": "Shop"})
    await v.send(type="identify", name=name)
    await v.expect("identified")
    device = {"language": "ru-RU", "browser": "Chrome", "os": "Linux", "timezone": "Europe/Moscow",
              "screen": "1920x1080"}
    await v.send(type="track", name="session_started", properties=device, url="https://shop.example/")
    await v.send(type="track", name="page_viewed", properties={"title": "Pricing"},
                 url="https://shop.example/pricing?utm_source=mail&utm_campaign=spring")
    await v.send(type="track", name="session_started", properties=device)
    await v.send(type="track", name="triggered_message_read", properties={"message_id": 1})
    assert (await v.expect("error"))["code"] == "message_not_found"
    await v.send(type="track", name="triggered_message_read", properties={})
    assert (await v.expect("error"))["code"] == "invalid_properties"
    await v.send(type="ping")
    await v.expect("pong")
    async with api(server, admin) as http:
        found = (await http.get("/contacts", params={"q": name})).json()["items"]
        card = (await http.get(f"/contacts/{found[0]['id']}")).json()
    contact = card["contact"]
    assert contact["first_utm"] == {"source": "ads", "medium": "cpc"}
    assert contact["first_referrer"] == "https://search.example/q"
    assert contact["sessions"] == 2
    props = contact["properties"]
    assert {k: props[k] for k in device} == device
    assert props["last_utm"] == {"source": "mail", "campaign": "spring"}
    assert props["pages_viewed"] == 1
    assert props["last_page"] == {"url": "https://shop.example/pricing?utm_source=mail&utm_campaign=spring",
                                  "title": "Pricing"}
    assert sorted(e["name"] for e in card["events"]) == ["page_viewed", "session_started", "session_started"]
    await v.close()
