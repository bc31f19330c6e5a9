"""Ids are 64-bit everywhere, and no input makes the database fail: ids at 2^31 (past a 32-bit
column), 2^63-1 (the largest BIGINT) and 2^63 (past every column), and text carrying NUL
(PostgreSQL refuses it), sent to every REST path, body and query field and every socket frame
that takes them, on SQLite and PostgreSQL. The answer is 404 or a validation error; never a
500, never an `internal` error frame, never a socket dropped without a word.

The fields are found in the OpenAPI document and the frame models (ids and sequence numbers
are `format: int64` there), so a new endpoint or frame is covered as soon as it has a sample."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from chat_server.frames import operator_frame_adapter, visitor_frame_adapter
from tests.harness import ADMIN_EMAIL, ADMIN_PASSWORD, ChatServer, Socket, api, login, visitor

pytestmark = pytest.mark.anyio

BIG = [2**31, 2**63 - 1, 2**63]
MAX = 2**63 - 1
NUL = "a\x00b"
MISSING = 987654321  # an id no row has: the path is valid, the body is what is tested


def cid() -> str:
    return uuid.uuid4().hex


# --- what the server declares ----------------------------------------------------------------


def options(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives a (possibly optional, possibly referenced) schema allows."""
    if "$ref" in schema:
        return options(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [o for alt in schema[key] for o in options(alt, defs)]
    return [schema]


def is_id(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "integer" and schema.get("format") == "int64"


def is_text(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "string" and "enum" not in schema and "const" not in schema


def id_values(schema: dict[str, Any], defs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(kind, value) for each big id this schema can be sent: itself, or in a list."""
    for alt in options(schema, defs):
        for big in BIG:
            if is_id(alt):
                yield "scalar", big
            elif alt.get("type") == "array" and any(is_id(i) for i in options(alt.get("items", {}), defs)):
                yield "list", [big]


def nul_values(schema: dict[str, Any], defs: dict[str, Any]) -> list[Any]:
    """Values carrying NUL that this schema's shape accepts."""
    found: list[Any] = []
    for alt in options(schema, defs):
        if is_text(alt):
            found.append(NUL)
        elif alt.get("type") == "array" and any(is_text(i) for i in options(alt.get("items", {}), defs)):
            found.append([NUL])
        elif alt.get("type") == "object" and "properties" not in alt:
            found += [{"key": NUL}, {NUL: "value"}]
    return found


def fields(model: dict[str, Any], defs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: schema for o in options(model, defs) for name, schema in o.get("properties", {}).items()}


# --- the world the requests are sent into ----------------------------------------------------


class World:
    """Real rows to aim at, so a request reaches the query that would fail."""

    def __init__(self, server: ChatServer) -> None:
        self.server = server
        self.token = ""
        self.visitor_token = ""
        self.conversation_id = 0
        self.contact_id = 0
        self.other_contact_id = 0
        self.operator_id = 0
        self.saved_reply_id = 0
        self.api_key = ""

    async def build(self) -> World:
        self.token = await login(self.server)
        self.contact_id, self.visitor_token = await self.new_contact()
        self.other_contact_id, _ = await self.new_contact()
        async with api(self.server, self.token) as http:
            card = (await http.get(f"/contacts/{self.contact_id}")).json()
            self.conversation_id = card["conversation"]["id"]
            self.operator_id = (await http.get("/me")).json()["id"]
            r = await http.post("/saved-replies", json={"shortcut": cid()[:10], "text": "Hi"})
            assert r.status_code == 201, r.text
            self.saved_reply_id = r.json()["id"]
            self.api_key = (await http.post("/api-keys", json={"name": "backend"})).json()["secret"]
        return self

    async def new_contact(self) -> tuple[int, str]:
        v, welcome = await visitor(self.server)
        await v.send(type="message.send", client_msg_id=cid(), text="hello")
        ack = await v.expect("ack")
        own = [f for f in v.seen if f["type"] == "message" and f["message"]["seq"] == ack["seq"]]
        message = own[0] if own else await v.expect("message", seq=ack["seq"])
        await v.close()
        return message["message"]["author"]["id"], welcome["token"]

    def real_id(self, path: str) -> int:
        return {
            "/api/v1/conversations/": self.conversation_id, "/api/v1/contacts/": self.contact_id,
            "/api/v1/operators/": self.operator_id, "/api/v1/saved-replies/": self.saved_reply_id,
        }.get(path.split("{id}")[0], MISSING)

    def sample_body(self, schema_name: str) -> dict[str, Any]:
        """A valid body per request schema: each test changes one field of it."""
        samples: dict[str, dict[str, Any]] = {
            "LoginBody": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            "AvailabilityBody": {"availability": "online"},
            "ReplyBody": {"text": "hi"},
            "NoteBody": {"text": "a note"},
            "AssignBody": {"assignee_id": None},
            "StatusBody": {"status": "open"},
            "TagsBody": {"tags": ["x"]},
            "ReadBody": {"seq": 0},
            "MergeBody": {"other_contact_id": self.other_contact_id, "reason": "same person"},
            "OperatorCreateBody": {"name": "n", "email": f"{cid()[:8]}@example.com", "password": "password-1"},
            "OperatorUpdateBody": {"name": "Admin"},
            "ChannelCreateBody": {"channel": "telegram", "name": "bot", "enabled": False, "config": {}},
            "ChannelUpdateBody": {"name": "bot"},
            "SavedReplyBody": {"shortcut": cid()[:10], "text": "Hello"},
            "SavedReplyUpdateBody": {"text": "Hello"},
            "ContactUpdateBody": {"name": "Ann"},
            "ContactSearchBody": {},
            "ContactExportBody": {},
            "SiteUpdateBody": {},
            "CountBody": {"definition": {}},
            "SegmentBody": {"name": cid(), "definition": {}},
            "SegmentUpdateBody": {"description": "d"},
            "RuleBody": {"name": "r", "definition": {"when": {"kind": "event", "name": "x"}, "points": 1}},
            "RuleUpdateBody": {"name": "r"},
            "GradingBody": {"enabled": False},
            "ApiKeyBody": {"name": "k"},
            # One address each: a second one would be refused whatever its value.
            "TrackBody": {"contact_id": self.contact_id, "name": "e"},
            "IdentifyBody": {"contact_id": self.contact_id},
            "OperationsBody": {"operations": [{"op": "set", "key": "a", "value": 1}]},
            "BeaconBody": {"token": self.visitor_token, "events": [{"name": "e"}]},
            "TriggerBody": {"name": "t", "when": {"type": "event", "event": "e"},
                            "variants": [{"name": "A", "weight": 100, "text": "Hi"}]},
            "TriggerPatch": {"name": "t"},
            "PreviewBody": {"text": "Hi", "contact_id": self.contact_id},
            "DryRunBody": {"days": 7},
            "DefinitionDryRunBody": {"when": {"type": "event", "event": "e"},
                                     "variants": [{"name": "A", "weight": 100, "text": "Hi"}]},
        }
        assert schema_name in samples, f"add a sample body for {schema_name} to this test"
        return samples[schema_name]

    def sample_query(self, operation: dict[str, Any]) -> dict[str, str]:
        required = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query" and p["required"]}
        samples = {"site": "nosuchsite", "contact_id": str(self.contact_id)}
        assert required <= set(samples), f"add a sample for query parameters {required - set(samples)}"
        return {name: samples[name] for name in required}


@pytest.fixture(scope="module")
async def world(server: ChatServer) -> World:
    return await World(server).build()


# --- REST -------------------------------------------------------------------------------------


class Operation:
    def __init__(self, world: World, document: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> None:
        self.world, self.path, self.method, self.op = world, path, method.upper(), op
        self.defs = document["components"]["schemas"]
        ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        self.body_name = ref["$ref"].rsplit("/", 1)[1] if ref else None
        self.visitor = {"visitor": []} in op.get("security", []) and {"bearer": []} not in op.get("security", [])
        self.backend = {"api_key": []} in op.get("security", [])

    def __repr__(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, ident: int | None = None) -> str:
        ident = self.world.real_id(self.path) if ident is None else ident
        return self.path.replace("{id}", str(ident)).replace("{name}", "file.txt")

    def body(self) -> dict[str, Any] | None:
        return self.world.sample_body(self.body_name) if self.body_name else None

    def query_params(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p["schema"] for p in self.op.get("parameters", []) if p["in"] == "query"}

    async def send(self, http: httpx.AsyncClient, *, ident: int | None = None, body: Any = None,
                   query: dict[str, str] | None = None) -> httpx.Response:
        auth = (f"Visitor {self.world.visitor_token}" if self.visitor
                else f"Bearer {self.world.api_key}" if self.backend else f"Bearer {self.world.token}")
        content = json.dumps(body if body is not None else self.body()) if self.body_name else b""
        params = {**self.world.sample_query(self.op), **(query or {})}
        return await http.request(self.method, self.world.server.http + self.url(ident), content=content,
                                  params=params, headers={"authorization": auth, "content-type": "application/json"})


SKIP = {("POST", "/api/v1/auth/logout")}  # would end the session every other request uses


async def operations(world: World, http: httpx.AsyncClient) -> list[Operation]:
    document = (await http.get(world.server.http + "/api/v1/openapi.json")).json()
    found = [Operation(world, document, path, method, op) for path, methods in document["paths"].items()
             for method, op in methods.items() if (method.upper(), path) not in SKIP]
    assert len(found) > 30
    return found


def refused(r: httpx.Response, *statuses: int) -> bool:
    if r.status_code not in statuses:
        return False
    error = r.json()["error"]
    return bool(error["code"]) and bool(error["message"])


async def test_every_path_id_is_not_found(server: ChatServer, world: World) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        ops = [op for op in await operations(world, http) if "{id}" in op.path]
        assert len(ops) > 15
        wrong = []
        for op in ops:
            for big in BIG:
                r = await op.send(http, ident=big)
                if not refused(r, 404):
                    wrong.append((repr(op), big, r.status_code, r.text[:200]))
    assert not wrong, wrong


async def test_every_id_field_of_a_body_or_query(server: ChatServer, world: World) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        ops = await operations(world, http)
        wrong: list[Any] = []
        tried: set[str] = set()
        for op in ops:
            if op.body_name:
                for name, schema in fields(op.defs[op.body_name], op.defs).items():
                    for _, value in id_values(schema, op.defs):
                        body = {**(op.body() or {}), name: value}
                        r = await op.send(http, body=body)
                        tried.add(name)
                        ok = refused(r, 422) if too_big(value) else r.status_code < 400 or refused(r, 404)
                        if not ok:
                            wrong.append((repr(op), name, value, r.status_code, r.text[:200]))
            for name, schema in op.query_params().items():
                for kind, value in id_values(schema, op.defs):
                    if kind != "scalar":
                        continue
                    r = await op.send(http, query={name: str(value)})
                    tried.add(name)
                    ok = refused(r, 422) if too_big(value) else r.status_code < 400 or refused(r, 404)
                    if not ok:
                        wrong.append((repr(op), name, value, r.status_code, r.text[:200]))
    assert not wrong, wrong
    # The fields the issue named are among those the documents declare as ids.
    assert tried >= {"assignee_id", "other_contact_id", "seq", "attachment_ids", "cursor", "before_seq",
                     "before_id", "assignee"}, tried


async def test_named_id_inputs(server: ChatServer, world: World) -> None:
    """The reported cases, spelled out (they hold even if a document forgot to say int64)."""
    conv, contact = world.conversation_id, world.contact_id
    async with api(server, world.token) as http:
        for big in BIG:
            assert refused(await http.get(f"/conversations/{big}"), 404)
            for r in [
                await http.post(f"/conversations/{conv}/assign", json={"assignee_id": big}),
                await http.post(f"/contacts/{contact}/merge", json={"other_contact_id": big, "reason": "x"}),
                await http.post(f"/conversations/{conv}/messages", json={"text": "x", "attachment_ids": [big]}),
            ]:
                assert refused(r, 404, 422), r.text
            for path, params in [
                ("/conversations", {"assignee": str(big)}),
                ("/contacts", {"cursor": str(big)}),
                (f"/conversations/{conv}/messages", {"before_seq": str(big)}),
                (f"/contacts/{contact}/events", {"before_id": str(big)}),
            ]:
                r = await http.get(path, params=params)
                assert (r.status_code == 200) if big <= MAX else refused(r, 422), (path, params, r.text)
            # Not in the OpenAPI document: Telegram or VK would retry a 5xx for ever.
            assert (await http.post(f"/channels/{big}/webhook", content=b"{}")).status_code == 404
            r = await http.post("/contacts/search", json={"cursor": big})
            assert (r.status_code == 200) if big <= MAX else refused(r, 422), r.text
            # The conversations cursor is opaque, but a client can still forge one.
            forged = base64.urlsafe_b64encode(f"2026-01-01T00:00:00+00:00|{big}".encode()).decode()
            r = await http.get("/conversations", params={"cursor": forged})
            assert (r.status_code == 200) if big <= MAX else refused(r, 400), r.text
        for odd in ["0001-01-01T00:00:00+05:00|1", "9999-12-31T23:59:59-05:00|1"]:
            r = await http.get("/conversations", params={"cursor": base64.urlsafe_b64encode(odd.encode()).decode()})
            assert r.status_code == 200 or refused(r, 400), r.text


# A browser's file name loses its control characters (NUL too) instead of failing the upload.
CLEANED = {("POST", "/api/v1/attachments", "name"), ("POST", "/api/v1/widget/attachments", "name")}


async def test_every_text_field_refuses_nul(server: ChatServer, world: World) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        ops = await operations(world, http)
        wrong: list[Any] = []
        tried: set[str] = set()
        for op in ops:
            if op.body_name:
                for name, schema in fields(op.defs[op.body_name], op.defs).items():
                    for value in nul_values(schema, op.defs):
                        r = await op.send(http, body={**(op.body() or {}), name: value})
                        tried.add(name)
                        if not refused(r, 422):
                            wrong.append((repr(op), name, value, r.status_code, r.text[:200]))
            for name, schema in op.query_params().items():
                if nul_values(schema, op.defs):
                    r = await op.send(http, query={name: NUL})
                    tried.add(name)
                    if (op.method, op.path, name) in CLEANED:
                        if r.status_code >= 500 or "\x00" in r.text or "\\u0000" in r.text:
                            wrong.append((repr(op), name, r.status_code, r.text[:200]))
                    elif not refused(r, 422):
                        wrong.append((repr(op), name, r.status_code, r.text[:200]))
    assert not wrong, wrong
    assert tried >= {"email", "reason", "name", "tags", "text", "properties", "q", "config"}, tried
    async with api(server, world.token) as http:  # and the text was not stored anyway
        names = [o["name"] for o in (await http.get("/operators")).json()["items"]]
        assert not [n for n in names if "\x00" in n]


# --- sockets ----------------------------------------------------------------------------------


def frame_schemas(adapter: Any) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """frame type -> (its properties, the definitions they refer to)."""
    schema = adapter.json_schema()
    defs = schema.get("$defs", {})
    found = {}
    for alt in options(schema, defs):
        for model in options(alt, defs):
            found[model["properties"]["type"]["const"]] = (model["properties"], defs)
    return found


def visitor_samples(world: World) -> dict[str, dict[str, Any]]:
    return {
        "hello": {"token": world.visitor_token},
        "message.send": {"client_msg_id": cid(), "text": "hi"},
        "typing": {"is_typing": True},
        "receipt": {"state": "read", "seq": 0},
        "track": {"name": "viewed"},
        "identify": {"name": "Ann"},
        "contact.email": {"email": "ann@example.com"},
        "ping": {},
    }


def operator_samples(world: World) -> dict[str, dict[str, Any]]:
    return {
        "hello": {"token": world.token, "cursors": {str(world.conversation_id): {"seq": 0, "epoch": 1}}},
        "message.send": {"conversation_id": world.conversation_id, "client_msg_id": cid(), "text": "hi"},
        "typing": {"conversation_id": world.conversation_id, "is_typing": True},
        "read": {"conversation_id": world.conversation_id, "seq": 0},
        "presence": {"availability": "online"},
        "ping": {},
    }


async def answers_to(sock: Socket, frame: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything the server says to a frame: our ping's pong comes after it."""
    await sock.send_raw(json.dumps(frame))
    await sock.send(type="ping")
    got = []
    while (answer := await sock.recv()).get("type") != "pong":
        got.append(answer)
    return got


async def hello_answer(server: ChatServer, kind: str, frame: dict[str, Any]) -> dict[str, Any]:
    """The first frame a hello gets: a welcome or an error, never silence."""
    async with websockets.connect(f"{server.ws}/ws/{kind}", max_size=2**22) as ws:
        sock = Socket(ws)
        await sock.send_raw(json.dumps(frame))
        try:
            return await sock.recv()
        except websockets.ConnectionClosed as exc:
            raise AssertionError(f"hello {frame} closed the socket without a frame: {exc}") from exc


def variants(schemas: dict[str, tuple[dict[str, Any], dict[str, Any]]], samples: dict[str, dict[str, Any]],
             values: Any) -> Iterator[tuple[str, str, Any, dict[str, Any]]]:
    assert set(schemas) <= set(samples), f"add samples for frames {set(schemas) - set(samples)}"
    for frame_type, (props, defs) in schemas.items():
        for name, schema in props.items():
            for value in values(schema, defs):
                yield frame_type, name, value, {"type": frame_type, **samples[frame_type], name: value}


def nested_cursor_variants(world: World) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """The inbox hello's cursors: ids in the keys, seq and epoch in the values."""
    conv = str(world.conversation_id)
    for big in BIG:
        yield "cursors key", big, {str(big): {"seq": 0, "epoch": 1}}
        yield "cursors seq", big, {conv: {"seq": big, "epoch": 1}}
        yield "cursors epoch", big, {conv: {"seq": 0, "epoch": big}}
    yield "cursors key", 10**19, {str(10**19): {"seq": 0}}


def too_big(value: Any) -> bool:
    return any(v > MAX for v in (value if isinstance(value, list) else [value]))


def check_answers(kind: str, answers: list[dict[str, Any]], value: Any, wrong: list[Any], what: Any) -> None:
    errors = [a for a in answers if a["type"] == "error"]
    if [e for e in errors if e["code"] == "internal"] or (too_big(value) and not [
            e for e in errors if e["code"] == "invalid_frame"]):
        wrong.append((kind, what, answers))


@pytest.mark.parametrize("kind", ["widget", "inbox"])
async def test_every_id_in_a_frame(server: ChatServer, world: World, kind: str) -> None:
    adapter, samples = (visitor_frame_adapter, visitor_samples(world)) if kind == "widget" else \
        (operator_frame_adapter, operator_samples(world))
    wrong: list[Any] = []
    tried = set()

    def ids(schema: dict[str, Any], defs: dict[str, Any]) -> list[Any]:
        return [v for _, v in id_values(schema, defs)]

    sock = await _socket(server, kind, samples["hello"])
    for frame_type, name, value, frame in variants(frame_schemas(adapter), samples, ids):
        tried.add(f"{frame_type}.{name}")
        if frame_type == "hello":
            first = await hello_answer(server, kind, frame)
            check_answers(kind, [first], value, wrong, (frame_type, name, value))
            if not too_big(value) and first["type"] != "welcome":
                wrong.append((kind, frame_type, name, value, first))
            continue
        check_answers(kind, await answers_to(sock, frame), value, wrong, (frame_type, name, value))
    if kind == "inbox":
        for what, value, cursors in nested_cursor_variants(world):
            tried.add(what)
            first = await hello_answer(server, kind, {**samples["hello"], "type": "hello", "cursors": cursors})
            check_answers(kind, [first], value, wrong, (what, value))
            if not too_big(value) and first["type"] != "welcome":
                wrong.append((kind, what, value, first))
    await sock.close()
    assert not wrong, wrong
    expected = {"hello.last_seq", "hello.epoch", "message.send.attachment_ids", "receipt.seq"} if kind == "widget" \
        else {"message.send.conversation_id", "message.send.attachment_ids", "typing.conversation_id",
              "read.conversation_id", "read.seq", "cursors key", "cursors seq"}
    assert tried >= expected, tried


async def test_an_inbox_holding_a_big_cursor_reconnects(server: ChatServer, world: World) -> None:
    """Reported: a hello whose cursors named an id past 2^31 dropped the socket, for good."""
    for ident in [3_000_000_000, MAX]:
        ws = await websockets.connect(f"{server.ws}/ws/inbox")
        sock = Socket(ws)
        await sock.send(type="hello", token=world.token, cursors={str(ident): {"seq": 5, "epoch": 1}})
        await sock.expect("welcome")
        removed = await sock.expect("conversation.removed")
        assert removed["conversation_id"] == ident
        assert await answers_to(sock, {"type": "ping"}) == []
        await sock.close()


@pytest.mark.parametrize("kind", ["widget", "inbox"])
async def test_every_text_in_a_frame_refuses_nul(server: ChatServer, world: World, kind: str) -> None:
    adapter, samples = (visitor_frame_adapter, visitor_samples(world)) if kind == "widget" else \
        (operator_frame_adapter, operator_samples(world))
    wrong: list[Any] = []
    tried = set()
    sock = await _socket(server, kind, samples["hello"])
    for frame_type, name, value, frame in variants(frame_schemas(adapter), samples, nul_values):
        if name == "type":
            continue
        tried.add(f"{frame_type}.{name}")
        answers = [await hello_answer(server, kind, frame)] if frame_type == "hello" else await answers_to(sock, frame)
        codes = [a.get("code") for a in answers if a["type"] == "error"]
        if not codes or "internal" in codes:
            wrong.append((frame_type, name, value, answers))
    nested = {"hello": {"page": {"url": NUL}}} if kind == "widget" else {}
    for frame_type, extra in nested.items():
        answer = await hello_answer(server, kind, {"type": frame_type, **samples[frame_type], **extra})
        if answer["type"] != "error" or answer["code"] == "internal":
            wrong.append((frame_type, extra, answer))
    await sock.close()
    assert not wrong, wrong
    assert len(tried) >= (6 if kind == "widget" else 2), tried


async def _socket(server: ChatServer, kind: str, hello: dict[str, Any]) -> Socket:
    ws = await websockets.connect(f"{server.ws}/ws/{kind}", max_size=2**22)
    sock = Socket(ws)
    await sock.send(type="hello", **hello)
    await sock.expect("welcome")
    return sock
