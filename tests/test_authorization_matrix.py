"""Every REST endpoint (enumerated from the running app, so a new one fails this test until it
is given a rule) and every socket frame that writes, against every kind of caller: anonymous,
visitor A, visitor B, operator, sales, admin, a logged-out session, a deactivated operator.

Visitor B never reads or writes A's data; sales never writes; only admins manage operators,
channels, saved replies and the site; a channel webhook refuses a wrong secret."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from starlette.routing import Route

from tests.appserver import AppServer
from tests.channel_helpers import add_channel
from tests.harness import ADMIN_EMAIL, ADMIN_PASSWORD, Socket, api, create_operator, login

pytestmark = pytest.mark.anyio

ROLES = ("anonymous", "visitor_a", "visitor_b", "revoked", "deactivated", "backend", "sales", "operator", "admin")
STAFF = ("operator", "sales", "admin")
BOT_TOKEN = "123456:AAH-secret-bot-token_abcdefghijkl"
WEBHOOK_SECRET = "right-secret-" + "s" * 20

# Who may call what. "staff": any operator, sales included (reads, and their own session);
# "write": operators and admins, sales get 403 read_only; "admin": admins only; "visitor": the
# widget's token only; "reader": staff, or the visitor the data belongs to; "public": anyone;
# "backend": the site's backend with an API key an admin created (and no one else).
RULES: dict[tuple[str, str], str] = {
    ("POST", "/auth/login"): "public",
    ("POST", "/auth/logout"): "staff",
    ("GET", "/me"): "staff",
    ("PATCH", "/me"): "staff",
    ("GET", "/contacts/{id}/export"): "admin",
    ("DELETE", "/contacts/{id}"): "admin",
    ("POST", "/me/availability"): "staff",
    ("GET", "/conversations"): "staff",
    ("GET", "/conversations/unread"): "staff",
    ("GET", "/conversations/{id}"): "staff",
    ("GET", "/conversations/{id}/messages"): "staff",
    ("POST", "/conversations/{id}/messages"): "write",
    ("POST", "/conversations/{id}/notes"): "write",
    ("POST", "/conversations/{id}/assign"): "write",
    ("POST", "/conversations/{id}/status"): "write",
    ("POST", "/conversations/{id}/tags"): "write",
    ("POST", "/conversations/{id}/read"): "write",
    ("GET", "/contacts"): "staff",
    ("GET", "/contacts/{id}"): "staff",
    ("PATCH", "/contacts/{id}"): "write",
    ("POST", "/contacts/{id}/merge"): "write",
    ("GET", "/contacts/{id}/events"): "staff",
    ("GET", "/contacts/{id}/proactive"): "staff",
    ("POST", "/contacts/search"): "staff",
    ("POST", "/contacts/export"): "staff",
    ("GET", "/reports"): "staff",
    ("GET", "/operators"): "staff",
    ("POST", "/operators"): "admin",
    ("PATCH", "/operators/{id}"): "admin",
    ("GET", "/openapi.json"): "public",
    ("POST", "/widget/attachments"): "visitor",
    ("POST", "/attachments"): "write",
    ("GET", "/attachments/{id}/{name}"): "reader",
    ("GET", "/site"): "admin",
    ("PATCH", "/site"): "admin",
    ("GET", "/widget/config"): "public",
    ("GET", "/saved-replies"): "staff",
    ("POST", "/saved-replies"): "admin",
    ("PATCH", "/saved-replies/{id}"): "admin",
    ("DELETE", "/saved-replies/{id}"): "admin",
    ("GET", "/channels"): "admin",
    ("POST", "/channels"): "admin",
    ("GET", "/channels/{id}"): "admin",
    ("PATCH", "/channels/{id}"): "admin",
    ("DELETE", "/channels/{id}"): "admin",
    ("GET", "/widget/channel-links"): "visitor",
    ("GET", "/messages/{id}/original"): "staff",
    ("POST", "/widget/token/revoke"): "visitor",
    ("GET", "/segments"): "staff",
    ("GET", "/segments/presets"): "staff",
    ("POST", "/segments/count"): "staff",
    ("POST", "/segments"): "admin",
    ("POST", "/segments/presets/{key}"): "admin",
    ("GET", "/segments/{id}"): "staff",
    ("PATCH", "/segments/{id}"): "admin",
    ("DELETE", "/segments/{id}"): "admin",
    ("GET", "/segments/{id}/contacts"): "staff",
    ("GET", "/segments/{id}/export.csv"): "staff",
    ("GET", "/contacts/{id}/segments"): "staff",
    ("GET", "/data/names"): "staff",
    ("GET", "/scoring/rules"): "staff",
    ("POST", "/scoring/rules"): "admin",
    ("POST", "/scoring/preset"): "admin",
    ("PATCH", "/scoring/rules/{id}"): "admin",
    ("DELETE", "/scoring/rules/{id}"): "admin",
    ("GET", "/scoring/grading"): "staff",
    ("PUT", "/scoring/grading"): "admin",
    ("GET", "/scoring/recompute"): "staff",
    ("GET", "/contacts/{id}/behaviour"): "staff",
    ("GET", "/api-keys"): "admin",
    ("POST", "/api-keys"): "admin",
    ("DELETE", "/api-keys/{id}"): "admin",
    ("POST", "/track"): "backend",
    ("POST", "/identify"): "backend",
    ("POST", "/contacts/{id}/properties"): "write",
    ("POST", "/beacon"): "public",
    ("GET", "/triggers"): "staff",
    ("POST", "/triggers"): "admin",
    ("POST", "/triggers/preview"): "staff",
    ("POST", "/triggers/dry-run"): "staff",
    ("GET", "/triggers/{id}"): "staff",
    ("PATCH", "/triggers/{id}"): "admin",
    ("DELETE", "/triggers/{id}"): "admin",
    ("POST", "/triggers/{id}/duplicate"): "admin",
    ("GET", "/triggers/{id}/explain"): "staff",
    ("POST", "/triggers/{id}/dry-run"): "staff",
}
TRIGGER_BODY = {"name": "greeting", "when": {"type": "event", "event": "page_viewed"},
                "variants": [{"name": "A", "weight": 100, "text": "Hi"}]}
# Routes outside the documented API, each tested on its own below.
UNDOCUMENTED = {("POST", "/api/v1/channels/{id:int}/webhook")}


def allowed(rule: str, role: str) -> bool:
    return {
        "public": True,
        "staff": role in STAFF,
        "write": role in ("operator", "admin"),
        "admin": role == "admin",
        "visitor": role in ("visitor_a", "visitor_b"),
        "reader": role in (*STAFF, "visitor_a"),
        "backend": role == "backend",
    }[rule]


def refusal(rule: str, role: str) -> set[int]:
    """What a caller who may not do this gets."""
    if rule == "reader" and role == "visitor_b":
        return {404}  # another visitor's file is answered as if it did not exist
    if role in ("sales", "operator") and rule in ("write", "admin"):
        return {403}
    return {401}


@dataclass
class World:
    app: AppServer
    bearer: dict[str, str] = field(default_factory=dict)
    visitor: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    sockets: list[Socket] = field(default_factory=list)

    def headers(self, role: str) -> dict[str, str]:
        if role in self.visitor:
            return {"authorization": f"Visitor {self.visitor[role]}"}
        if role in self.bearer:
            return {"authorization": f"Bearer {self.bearer[role]}"}
        return {}

    async def fresh_headers(self, role: str) -> dict[str, str]:
        """A credential of this kind that the call may use up (logout, token revocation)."""
        if role in ("visitor_a", "visitor_b"):
            sock, welcome = await widget(self.app)
            await sock.close()
            return {"authorization": f"Visitor {welcome['token']}"}
        if role in STAFF:
            email = self.emails[role]
            password = ADMIN_PASSWORD if role == "admin" else "password-" + email
            return {"authorization": f"Bearer {await login(self.app, email, password)}"}  # type: ignore[arg-type]
        return self.headers(role)


async def widget(app: AppServer) -> tuple[Socket, dict[str, Any]]:
    sock = Socket(await websockets.connect(app.ws + "/ws/widget"))
    await sock.send(type="hello")
    return sock, await sock.expect("welcome")


async def inbox(app: AppServer, token: str) -> Socket:
    sock = Socket(await websockets.connect(app.ws + "/ws/inbox"))
    await sock.send(type="hello", token=token, cursors={})
    return sock


def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def world(tmp_path: Path, db_url: str) -> AsyncIterator[World]:
    async with AppServer(tmp_path, db_url, channel_workers=False) as app:
        w = World(app)
        admin = await login(app)  # type: ignore[arg-type]
        w.bearer["admin"], w.emails["admin"] = admin, ADMIN_EMAIL
        for role in ("operator", "sales"):
            w.emails[role] = f"{role}-{uid()}@example.com"
            w.bearer[role] = await create_operator(app, admin, w.emails[role], role=role)  # type: ignore[arg-type]
        w.bearer["revoked"] = await create_operator(app, admin, f"gone-{uid()}@example.com")  # type: ignore[arg-type]
        async with api(app, w.bearer["revoked"]) as http:  # type: ignore[arg-type]
            assert (await http.post("/auth/logout")).status_code == 200
        deactivated_email = f"left-{uid()}@example.com"
        w.bearer["deactivated"] = await create_operator(app, admin, deactivated_email)  # type: ignore[arg-type]
        async with api(app, admin) as http:  # type: ignore[arg-type]
            team = (await http.get("/operators")).json()["items"]
            w.ids["deactivated"] = next(o["id"] for o in team if o["email"] == deactivated_email)
            assert (await http.patch(f"/operators/{w.ids['deactivated']}", json={"is_active": False})).status_code == 200
            victim = await create_operator(app, admin, f"victim-{uid()}@example.com")  # type: ignore[arg-type]
            assert victim
            team = (await http.get("/operators")).json()["items"]
            w.ids["victim_operator"] = next(o["id"] for o in team if o["email"].startswith("victim-"))

        # Visitor A: a conversation with a file in it. Visitor B: a conversation of their own.
        for role in ("visitor_a", "visitor_b"):
            sock, welcome = await widget(app)
            w.visitor[role] = welcome["token"]
            w.sockets.append(sock)
        a = w.sockets[0]
        async with httpx.AsyncClient(base_url=app.http + "/api/v1", headers=w.headers("visitor_a")) as http:
            r = await http.post("/widget/attachments", params={"name": "a.txt"}, content=b"A's secret file",
                                headers={"content-type": "text/plain"})
            assert r.status_code == 201, r.text
            w.ids["attachment"] = r.json()["id"]
        await a.send(type="message.send", client_msg_id="a-1", text="A's question", attachment_ids=[w.ids["attachment"]])
        ack = await a.expect("ack")
        w.ids["message"] = ack["message_id"]
        b = w.sockets[1]
        await b.send(type="message.send", client_msg_id="b-1", text="B's question")
        await b.expect("ack")
        spare, _ = await widget(app)  # merged into A by whoever may
        await spare.send(type="message.send", client_msg_id="s-1", text="spare")
        await spare.expect("ack")
        await spare.close()
        leaving, _ = await widget(app)  # asks for their data to be deleted: only an admin may
        await leaving.send(type="message.send", client_msg_id="l-1", text="delete me")
        await leaving.expect("ack")
        await leaving.close()
        async with api(app, admin) as http:  # type: ignore[arg-type]
            convs = (await http.get("/conversations")).json()["items"]
            by_text = {}
            for conv in convs:
                items = (await http.get(f"/conversations/{conv['id']}/messages")).json()["items"]
                by_text[items[0]["text"]] = conv
            w.ids["conversation_a"] = by_text["A's question"]["id"]
            w.ids["contact_a"] = by_text["A's question"]["contact"]["id"]
            w.ids["conversation_b"] = by_text["B's question"]["id"]
            w.ids["contact_spare"] = by_text["spare"]["contact"]["id"]
            w.ids["contact_leaving"] = by_text["delete me"]["contact"]["id"]
            r = await http.post("/saved-replies", json={"shortcut": f"hi{uid()}", "text": "Hello!"})
            w.ids["saved_reply"] = r.json()["id"]
            http.timeout = httpx.Timeout(120)  # the first channel loads its SDK, slow on a busy machine
            w.ids["channel"] = (await add_channel(http, "telegram", {
                "token": BOT_TOKEN, "bot_username": "acme_bot", "mode": "webhook", "webhook_secret": WEBHOOK_SECRET}))["id"]
            w.ids["victim_channel"] = (await add_channel(http, "telegram", {
                "token": BOT_TOKEN, "bot_username": "other_bot"}, name="victim"))["id"]
            for name in ("segment", "victim_segment"):
                r = await http.post("/segments", json={"name": f"{name} {uid()}", "definition": {}})
                w.ids[name] = r.json()["id"]
            for name in ("rule", "victim_rule"):
                r = await http.post("/scoring/rules", json={"name": name, "definition": {
                    "when": {"kind": "event", "name": name}, "points": 1}})
                w.ids[name] = r.json()["id"]
            for name in ("trigger", "victim_trigger"):
                r = await http.post("/triggers", json=TRIGGER_BODY)
                assert r.status_code == 201, r.text
                w.ids[name] = r.json()["id"]
            w.bearer["backend"] = (await http.post("/api-keys", json={"name": "backend"})).json()["secret"]
            w.ids["victim_key"] = (await http.post("/api-keys", json={"name": "victim"})).json()["id"]
        try:
            yield w
        finally:
            for sock in w.sockets:
                await sock.close()


def request_for(w: World, method: str, path: str) -> tuple[str, dict[str, Any]]:
    """A well-formed request for the endpoint, on visitor A's data where it takes ids: a caller
    who may not make it is refused for who they are, not for a malformed request."""
    ids = {
        "/conversations/{id}": w.ids["conversation_a"], "/contacts/{id}": w.ids["contact_a"],
        "/operators/{id}": w.ids["victim_operator"], "/saved-replies/{id}": w.ids["saved_reply"],
        "/messages/{id}": w.ids["message"], "/attachments/{id}": w.ids["attachment"],
        "/channels/{id}": w.ids["victim_channel"] if method == "DELETE" else w.ids["channel"],
        "/segments/{id}": w.ids["victim_segment"] if method == "DELETE" else w.ids["segment"],
        "/scoring/rules/{id}": w.ids["victim_rule"] if method == "DELETE" else w.ids["rule"],
        "/api-keys/{id}": w.ids["victim_key"],
        "/triggers/{id}": w.ids["victim_trigger"] if method == "DELETE" else w.ids["trigger"],
    }
    if (method, path) == ("DELETE", "/contacts/{id}"):
        ids["/contacts/{id}"] = w.ids["contact_leaving"]
    url = path
    for prefix, value in ids.items():
        if url.startswith(prefix):
            url = url.replace("{id}", str(value), 1)
    url = url.replace("{name}", "a.txt").replace("{key}", "engaged")
    bodies: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
        ("POST", "/auth/login"): lambda: {"json": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}},
        ("POST", "/me/availability"): lambda: {"json": {"availability": "away"}},
        ("PATCH", "/me"): lambda: {"json": {"language": "en"}},
        ("POST", "/conversations/{id}/messages"): lambda: {"json": {"text": "a reply"}},
        ("POST", "/conversations/{id}/notes"): lambda: {"json": {"text": "a note"}},
        ("POST", "/conversations/{id}/assign"): lambda: {"json": {"assignee_id": None}},
        ("POST", "/conversations/{id}/status"): lambda: {"json": {"status": "open"}},
        ("POST", "/conversations/{id}/tags"): lambda: {"json": {"tags": ["vip"]}},
        ("POST", "/conversations/{id}/read"): lambda: {"json": {"seq": 1}},
        ("PATCH", "/contacts/{id}"): lambda: {"json": {"name": "Changed"}},
        ("POST", "/contacts/{id}/merge"): lambda: {"json": {"other_contact_id": w.ids["contact_spare"], "reason": "same"}},
        ("POST", "/contacts/search"): lambda: {"json": {}},
        ("POST", "/contacts/export"): lambda: {"json": {}},
        ("POST", "/operators"): lambda: {"json": {"name": "New", "email": f"new-{uid()}@example.com",
                                                   "password": "a long password"}},
        ("PATCH", "/operators/{id}"): lambda: {"json": {"name": "Renamed"}},
        ("POST", "/widget/attachments"): lambda: {"params": {"name": "f.txt"}, "content": b"file",
                                                  "headers": {"content-type": "text/plain"}},
        ("POST", "/attachments"): lambda: {"params": {"name": "f.txt"}, "content": b"file",
                                           "headers": {"content-type": "text/plain"}},
        ("PATCH", "/site"): lambda: {"json": {"name": "Shop"}},
        ("GET", "/widget/config"): lambda: {"params": {"site": "unknown"}},
        ("POST", "/saved-replies"): lambda: {"json": {"shortcut": f"s{uid()}", "text": "Hi"}},
        ("PATCH", "/saved-replies/{id}"): lambda: {"json": {"text": "Hello again"}},
        ("POST", "/channels"): lambda: {"json": {"channel": "telegram", "name": f"bot {uid()}",
                                                 "config": {"token": BOT_TOKEN, "bot_username": "acme_bot"}}},
        ("PATCH", "/channels/{id}"): lambda: {"json": {"name": "Renamed bot"}},
        ("POST", "/segments/count"): lambda: {"json": {"definition": {}}},
        ("POST", "/segments"): lambda: {"json": {"name": f"segment {uid()}", "definition": {}}},
        ("PATCH", "/segments/{id}"): lambda: {"json": {"name": f"renamed {uid()}"}},
        ("POST", "/scoring/rules"): lambda: {"json": {"name": "x", "definition": {
            "when": {"kind": "event", "name": "x"}, "points": 1}}},
        ("PATCH", "/scoring/rules/{id}"): lambda: {"json": {"name": "renamed"}},
        ("PUT", "/scoring/grading"): lambda: {"json": {"enabled": False}},
        ("POST", "/api-keys"): lambda: {"json": {"name": "another"}},
        ("POST", "/track"): lambda: {"json": {"user_id": "backend-user", "name": "signed_up"}},
        ("POST", "/identify"): lambda: {"json": {"user_id": "backend-user", "name": "Ann"}},
        ("POST", "/contacts/{id}/properties"): lambda: {"json": {"operations": [
            {"op": "set", "key": "plan", "value": "pro"}]}},
        ("POST", "/beacon"): lambda: {"json": {"token": w.visitor["visitor_a"], "events": [{"name": "page_left"}]}},
        ("POST", "/triggers"): lambda: {"json": TRIGGER_BODY},
        ("POST", "/triggers/preview"): lambda: {"json": {"text": "Hi {{ contact.name }}", "contact_id": w.ids["contact_a"]}},
        ("POST", "/triggers/dry-run"): lambda: {"json": {k: v for k, v in TRIGGER_BODY.items() if k not in ("name", "enabled")}},
        ("PATCH", "/triggers/{id}"): lambda: {"json": {"name": f"renamed {uid()}"}},
        ("GET", "/triggers/{id}/explain"): lambda: {"params": {"contact_id": str(w.ids["contact_a"])}},
        ("POST", "/triggers/{id}/dry-run"): lambda: {"json": {"days": 7}},
    }
    make = bodies.get((method, path))
    return url, make() if make else {}


async def test_every_endpoint_against_every_caller(world: World) -> None:
    w = world
    app_routes = {(m, r.path) for r in w.app.app.routes if isinstance(r, Route) and r.path.startswith("/api/v1")
                  for m in (r.methods or set()) - {"HEAD"}}
    async with httpx.AsyncClient(base_url=w.app.http, timeout=10) as http:
        doc = (await http.get("/api/v1/openapi.json")).json()
        endpoints = [(method.upper(), path.removeprefix("/api/v1"))
                     for path, methods in doc["paths"].items() for method in methods]
        documented = {(m, "/api/v1" + p) for m, p in endpoints}
        undocumented = {(m, p) for m, p in app_routes if (m, p.replace(":int}", "}")) not in documented}
        assert undocumented == UNDOCUMENTED, "a route is neither documented nor tested here"
        missing = [e for e in endpoints if e not in RULES]
        assert not missing, f"give these endpoints a rule: {missing}"
        assert len(endpoints) == len(RULES)

        problems = []
        for method, path in endpoints:
            rule = RULES[(method, path)]
            for role in ROLES:  # admins last: what only they may do may use things up
                url, extra = request_for(w, method, path)
                uses_up = path in ("/auth/logout", "/widget/token/revoke")
                headers = {**(await w.fresh_headers(role) if uses_up else w.headers(role)), **extra.pop("headers", {})}
                r = await http.request(method, "/api/v1" + url, headers=headers, **extra)
                ok = allowed(rule, role)
                if ok and (r.status_code in (401, 403) or r.status_code >= 500):
                    problems.append(f"{role} refused {method} {path}: {r.status_code} {r.text[:200]}")
                if not ok and r.status_code not in refusal(rule, role):
                    problems.append(f"{role} was not refused {method} {path}: {r.status_code} {r.text[:200]}")
                if not ok and role == "sales" and rule == "write" and r.status_code == 403:
                    assert r.json()["error"]["code"] == "read_only", (method, path, r.text)
        assert not problems, "\n".join(problems)

        # What was refused changed nothing: A's thread holds only what the allowed callers wrote.
        r = await http.get(f"/api/v1/conversations/{w.ids['conversation_a']}/messages",
                           headers=w.headers("admin"), params={"limit": "200"})
        texts = [m["text"] for m in r.json()["items"] if m["kind"] in ("text", "note")]
        assert texts.count("a reply") == 2 and texts.count("a note") == 2  # operator and admin, not sales


async def test_webhooks_refuse_a_wrong_secret(world: World) -> None:
    w = world
    update = {"update_id": 7, "message": {"message_id": 7, "date": 1763900000, "text": "from the wrong sender",
                                          "from": {"id": 99, "is_bot": False, "first_name": "Eve"},
                                          "chat": {"id": 99, "type": "private"}}}
    url = f"/api/v1/channels/{w.ids['channel']}/webhook"
    async with httpx.AsyncClient(base_url=w.app.http, timeout=10) as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                        {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET[:-1]}):
            r = await http.post(url, json=update, headers=headers)
            assert r.status_code in (401, 403), (headers, r.status_code, r.text)
        found = (await http.get("/api/v1/conversations", params={"q": "wrong sender"}, headers=w.headers("admin"))).json()
        assert found["items"] == []
        r = await http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET})
        assert r.status_code == 200, r.text
        found = (await http.get("/api/v1/conversations", params={"q": "wrong sender"}, headers=w.headers("admin"))).json()
        assert len(found["items"]) == 1  # the check above could have seen it


async def test_socket_frames_that_write_against_every_caller(world: World) -> None:
    w = world
    conv_a = w.ids["conversation_a"]
    # Inbox: who is let in at all.
    for role in ("anonymous", "visitor_a", "revoked", "deactivated"):
        token = w.visitor.get(role) or w.bearer.get(role) or "no-such-token"
        sock = await inbox(w.app, token)
        assert (await sock.expect("error"))["code"] == "unauthorized", role
        await sock.close()
    # Who may write what once in.
    for role in ("sales", "operator", "admin"):
        sock = await inbox(w.app, w.bearer[role])
        await sock.expect("welcome")
        frames = [
            {"type": "message.send", "conversation_id": conv_a, "client_msg_id": f"{role}-1", "text": f"{role} says"},
            {"type": "message.send", "conversation_id": conv_a, "client_msg_id": f"{role}-2", "text": "n", "kind": "note"},
            {"type": "typing", "conversation_id": conv_a, "is_typing": True},
            {"type": "read", "conversation_id": conv_a, "seq": 1},
        ]
        for frame in frames:
            await sock.send(**frame)
        await sock.send(type="ping")
        answers = []
        while (frame := await sock.recv())["type"] != "pong":
            if frame["type"] in ("ack", "error"):
                answers.append(frame["type"] if frame["type"] == "ack" else frame["code"])
        assert answers == (["read_only"] * 4 if role == "sales" else ["ack", "ack"]), (role, answers)
        await sock.close()

    # The widget: visitor B's frames reach only B's own conversation; A's thread is untouched.
    a, b = w.sockets[0], w.sockets[1]
    before = await thread_texts(w, conv_a)
    await b.send(type="message.send", client_msg_id="b-2", text="B again")
    await b.expect("ack")
    await b.send(type="message.send", client_msg_id="b-3", text="into A", conversation_id=conv_a)
    assert (await b.expect("error"))["code"] == "invalid_frame"  # a widget cannot name a conversation
    await b.send(type="read", conversation_id=conv_a, seq=1)  # an inbox frame
    assert (await b.expect("error"))["code"] == "invalid_frame"
    await b.send(type="receipt", state="read", seq=1000)
    await b.send(type="track", name="b_was_here", properties={})
    await b.send(type="ping")
    await b.expect("pong")
    assert await thread_texts(w, conv_a) == before
    assert "B again" in await thread_texts(w, w.ids["conversation_b"])
    # A hears nothing of B (its next frame is the answer to its own ping).
    await a.send(type="ping")
    while (frame := await a.recv())["type"] != "pong":
        assert "B" not in str(frame.get("message", {}).get("text", "")), frame
    async with api(w.app, w.bearer["admin"]) as http:  # type: ignore[arg-type]
        events = (await http.get(f"/contacts/{w.ids['contact_a']}/events")).json()["items"]
        assert not any(e["name"] == "b_was_here" for e in events)
        conv = (await http.get(f"/conversations/{conv_a}")).json()
        assert conv["contact_read_seq"] < 1000
    # A staff token is no visitor token: the widget treats it as unknown and starts someone new.
    sock = Socket(await websockets.connect(w.app.ws + "/ws/widget"))
    await sock.send(type="hello", token=w.bearer["admin"])
    welcome = await sock.expect("welcome")
    assert welcome["conversation"]["last_seq"] == 0
    await sock.close()


async def thread_texts(w: World, conversation_id: int) -> list[str]:
    async with api(w.app, w.bearer["admin"]) as http:  # type: ignore[arg-type]
        r = await http.get(f"/conversations/{conversation_id}/messages", params={"limit": "200"})
    return [m["text"] for m in r.json()["items"]]
