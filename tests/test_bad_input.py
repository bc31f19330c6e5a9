"""Bad input, generated: whatever a client sends, the answer is a clear error (or the normal
answer for valid input), the socket stays usable, nothing invalid is stored, and nothing
ever fails inside the server (no `internal` error frame, no 500)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chat_server.frames import operator_frame_adapter, visitor_frame_adapter
from tests.harness import ChatServer, Socket, api, login, operator, visitor

json_scalars = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
# Ids at and past every column's edge: 32-bit, the largest BIGINT, and beyond it.
big_ids = st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1])
# Realistic values for the known fields, so that generated frames are often almost valid.
field_values = json_values | st.sampled_from(["read", "delivered", "online", "note", "email", "x" * 70]) | \
    st.integers(min_value=-2, max_value=5) | st.uuids().map(str) | big_ids | st.lists(big_ids, max_size=3) | \
    st.dictionaries(st.sampled_from(["1", str(2**63)]), st.dictionaries(st.sampled_from(["seq", "epoch"]), big_ids))


def declared(adapter: Any) -> tuple[list[str], list[str]]:
    """Every frame type a socket accepts and every field any of them has, read from the frame
    models: a frame type or field added later is fuzzed without touching this test."""
    schema = adapter.json_schema()
    mapping = schema["discriminator"]["mapping"]
    members = [schema["$defs"][ref.rsplit("/", 1)[1]] for ref in mapping.values()]
    return sorted(mapping), sorted({name for m in members for name in m.get("properties", {})} - {"type"})


def frames(types: list[str], fields: list[str]) -> st.SearchStrategy[Any]:
    frame = st.fixed_dictionaries(
        {"type": st.sampled_from([*types, "bogus", ""]) | json_scalars},
        optional={name: field_values for name in fields},
    )
    return frame | json_values  # also frames that are not objects at all


def is_valid(adapter: Any, frame: Any) -> bool:
    try:
        adapter.validate_python(frame)
    except ValidationError:
        return False
    return True


async def until_pong(sock: Socket, batch: list[Any]) -> list[dict[str, Any]]:
    """Every answer to the batch: frames are handled in order, so our own ping's pong comes
    last; pings inside the batch get pongs of their own before it."""
    await sock.send(type="ping")
    pongs = 1 + sum(1 for f in batch if isinstance(f, dict) and f == {"type": "ping"})
    got: list[dict[str, Any]] = []
    while pongs:
        frame = await sock.recv()
        if frame["type"] == "pong":
            pongs -= 1
        else:
            got.append(frame)
    return got


def run(coro: Any) -> Any:
    return asyncio.run(coro)


VISITOR_TYPES, VISITOR_FIELDS = declared(visitor_frame_adapter)
OPERATOR_TYPES, OPERATOR_FIELDS = declared(operator_frame_adapter)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(batch=st.lists(frames(VISITOR_TYPES, VISITOR_FIELDS), min_size=1, max_size=5))
@example(batch=[{"type": "ping"}, {"type": None}])
def test_generated_widget_frames(server: ChatServer, batch: list[Any]) -> None:
    async def scenario() -> None:
        v, welcome = await visitor(server)
        for frame in batch:
            await v.send_raw(json.dumps(frame))
        answers = await until_pong(v, batch)
        errors = [f for f in answers if f["type"] == "error"]
        assert not [e for e in errors if e["code"] == "internal"], errors
        invalid = [f for f in batch if not is_valid(visitor_frame_adapter, f)]
        assert len([e for e in errors if e["code"] == "invalid_frame"]) == len(invalid)
        # Only valid sends are stored: the thread holds exactly the acknowledged messages.
        acked = {f["message_id"] for f in answers if f["type"] == "ack"}
        await v.close()
        again, back = await visitor(server, token=welcome["token"])
        conv = back["conversation"]
        assert (conv["last_seq"] if conv else 0) == len(acked)
        await again.close()

    run(scenario())


@FUZZ
@given(batch=st.lists(frames(OPERATOR_TYPES, OPERATOR_FIELDS), min_size=1, max_size=5))
def test_generated_inbox_frames(server: ChatServer, batch: list[Any]) -> None:
    async def scenario() -> None:
        token = await login(server)
        op = await operator(server, token)
        for frame in batch:
            await op.send_raw(json.dumps(frame))
        answers = await until_pong(op, batch)
        errors = [f for f in answers if f["type"] == "error"]
        assert not [e for e in errors if e["code"] == "internal"], errors
        invalid = [f for f in batch if not is_valid(operator_frame_adapter, f)]
        assert len([e for e in errors if e["code"] == "invalid_frame"]) == len(invalid)
        await op.close()

    run(scenario())


@pytest.mark.anyio
async def test_broken_frames_get_errors_and_the_socket_lives_on(server: ChatServer) -> None:
    v, welcome = await visitor(server)
    for raw, code in [("{not json", "invalid_frame"), (b"\x00\x01binary", "text_expected"),
                      ('{"type": "message.send", "client_msg_id": "a", "text": 5}', "invalid_frame"),
                      ('{"type": "message.send", "client_msg_id": "a", "text": ""}', "empty_text"),
                      ('{"type": "message.send", "client_msg_id": "a", "text": "x", "extra": 1}', "invalid_frame"),
                      (json.dumps({"type": "message.send", "client_msg_id": "a", "text": "x" * 70_000}),
                       "frame_too_large")]:
        await v.send_raw(raw)
        assert (await v.expect("error"))["code"] == code
    await v.send(type="message.send", client_msg_id="fine", text="still here")
    assert (await v.expect("ack"))["seq"] == 1  # nothing before it was stored
    await v.close()


@pytest.mark.anyio
async def test_a_frame_over_the_protocol_limit_closes_with_1009(server: ChatServer) -> None:
    async with websockets.connect(server.ws + "/ws/widget", max_size=2**22) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            # Uncompressed, the server may close before the client has written all of it.
            await ws.send(json.dumps({"type": "hello", "token": "x" * (2 << 20)}))
            await asyncio.wait_for(ws.recv(), 5)
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def _operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    skip = {"/api/v1/auth/logout"}  # would end the session the fuzzer is using
    ops = []
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            if path not in skip and "requestBody" in op:
                # Ids that exist nowhere: a body that happens to be valid changes nothing.
                ops.append((method.upper(), path.replace("{id}", "987654321")))
    return ops


@FUZZ
@given(data=st.data())
def test_generated_rest_bodies(server: ChatServer, data: st.DataObject) -> None:
    async def scenario() -> None:
        token = await login(server)
        async with api(server, token) as http:
            document = (await http.get("/openapi.json")).json()
            method, path = data.draw(st.sampled_from(_operations(document)))
            body = data.draw(json_values | st.fixed_dictionaries({}, optional={k: field_values for k in
                             ["email", "password", "name", "role", "text", "channel", "assignee_id", "status",
                              "until", "tags", "seq", "other_id", "availability", "is_active"]}))
            raw = data.draw(st.sampled_from([json.dumps(body), json.dumps(body)[:-1], "", "null"]))
            r = await http.request(method, server.http + path, content=raw,
                                   headers={"content-type": "application/json"})
            assert r.status_code < 500, (method, path, raw, r.text)
            if r.status_code >= 400:
                assert set(r.json()["error"]) >= {"code", "message"}

    run(scenario())


@pytest.mark.anyio
async def test_oversized_and_malformed_rest_requests(server: ChatServer) -> None:
    token = await login(server)
    async with api(server, token) as http:
        r = await http.post("/conversations/1/notes", content=b"{" + b" " * 300_000 + b"}",
                            headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        r = await http.get("/conversations", params={"limit": "lots", "status": "sideways"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_query"
        r = await http.get("/conversations", params={"cursor": "%%%not-a-cursor"})
        assert r.status_code < 500
        r = await http.post("/auth/login", content=b"\xff\xfe not utf-8")
        assert r.status_code == 422
        r = await http.get("/conversations/99999999999999999999999")
        assert r.status_code == 404
