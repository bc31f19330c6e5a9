"""Attachments over real HTTP and sockets: limits, types, who may download, safe headers."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat_server import migrate
from chat_server.actions.attachments import do_store_attachment
from chat_server.actions.contacts import find_or_create_contact
from chat_server.actions.errors import ActionError
from chat_server.models import IdentityKind
from chat_server.settings import Settings
from tests.harness import ChatServer, Socket, api, create_operator, login, operator, visitor
from tests.inprocess import RecordingBus, runtime_for

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def uid() -> str:
    return uuid.uuid4().hex


def widget_http(server: ChatServer, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.http + "/api/v1",
                             headers={"authorization": f"Visitor {token}"}, timeout=10)


async def message_with_seq(sock: Socket, seq: int) -> dict[str, Any]:
    """The message frame with this seq, whether it came before or after what we waited for."""
    for frame in sock.seen:
        if frame["type"] == "message" and frame["message"]["seq"] == seq:
            return frame
    return await sock.expect("message", seq=seq)


async def upload(http: httpx.AsyncClient, path: str, data: bytes, name: str, content_type: str) -> httpx.Response:
    return await http.post(path, params={"name": name}, content=data, headers={"content-type": content_type})


async def test_visitor_sends_an_image_the_operator_downloads_it(server: ChatServer) -> None:
    token = await login(server)
    op = await operator(server, token)
    v, welcome = await visitor(server)
    async with widget_http(server, welcome["token"]) as http:
        r = await upload(http, "/widget/attachments", PNG, "фото 1.png", "image/png")
        assert r.status_code == 201, r.text
        info = r.json()
        assert info["name"] == "фото 1.png" and info["content_type"] == "image/png" and info["size"] == len(PNG)
        assert info["url"] == f"/api/v1/attachments/{info['id']}/%D1%84%D0%BE%D1%82%D0%BE%201.png"
        got = await http.get(info["url"].removeprefix("/api/v1"))
        assert got.status_code == 200 and got.content == PNG  # the uploader may read it back
    await v.send(type="message.send", client_msg_id=uid(), attachment_ids=[info["id"]])
    ack = await v.expect("ack")
    mine = await message_with_seq(v, ack["seq"])
    assert mine["message"]["attachments"] == [info] and mine["message"]["text"] == ""
    seen = await op.expect("message", client_msg_id=mine["message"]["client_msg_id"])
    assert seen["message"]["attachments"] == [info]
    async with api(server, token) as staff:
        r = await staff.get(info["url"].removeprefix("/api/v1"))
    assert r.status_code == 200 and r.content == PNG
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].startswith("inline;")
    assert "sandbox" in r.headers["content-security-policy"]
    await v.close()
    await op.close()


async def test_operator_file_reaches_only_its_visitor(server: ChatServer) -> None:
    token = await login(server)
    v, welcome = await visitor(server)
    await v.send(type="message.send", client_msg_id=uid(), text="send me the price list")
    await v.expect("ack")
    other, other_welcome = await visitor(server)
    async with api(server, token) as staff:
        r = await upload(staff, "/attachments", b"%PDF-1.4 price list", "prices.pdf", "application/pdf")
        assert r.status_code == 201, r.text
        pdf = r.json()
        convs = (await staff.get("/conversations", params={"limit": "200"})).json()["items"]
        mine = await message_with_seq(v, 1)
        conv = next(c for c in convs if c["contact"]["id"] == mine["message"]["author"]["id"])
        async with widget_http(server, welcome["token"]) as http:
            # Not theirs yet: an operator's upload is private until a reply carries it.
            assert (await http.get(pdf["url"].removeprefix("/api/v1"))).status_code == 404
        r = await staff.post(f"/conversations/{conv['id']}/messages", json={"attachment_ids": [pdf["id"]]})
        assert r.status_code == 201, r.text
    reply = await v.expect("message", seq=2)
    assert reply["message"]["attachments"] == [pdf]
    async with widget_http(server, welcome["token"]) as http:
        r = await http.get(pdf["url"].removeprefix("/api/v1"))
        assert r.status_code == 200 and r.content == b"%PDF-1.4 price list"
        assert r.headers["content-disposition"].startswith("attachment;")  # PDFs download
        # A visitor cannot attach somebody else's file.
        await v.send(type="message.send", client_msg_id=uid(), attachment_ids=[pdf["id"]])
        assert (await v.expect("error"))["code"] == "attachment_not_found"
    async with widget_http(server, other_welcome["token"]) as http:
        assert (await http.get(pdf["url"].removeprefix("/api/v1"))).status_code == 404
    async with httpx.AsyncClient(base_url=server.http) as anonymous:
        assert (await anonymous.get(pdf["url"])).status_code == 401
    async with widget_http(server, "forged.token") as http:
        assert (await http.get(pdf["url"].removeprefix("/api/v1"))).status_code == 401
    await v.close()
    await other.close()


@pytest.mark.parametrize(("data", "name", "content_type", "status", "code"), [
    (b"<html><script>alert(1)</script></html>", "x.html", "text/html", 400, "unsupported_type"),
    (b"<svg onload=alert(1)></svg>", "x.svg", "image/svg+xml", 400, "unsupported_type"),
    (b"<html>not a png</html>", "x.png", "image/png", 400, "not_an_image"),
    (b"", "empty.txt", "text/plain", 400, "empty_file"),
    (b"x", "noname", "", 400, "unsupported_type"),
    (b"a" * (10 * 1024 * 1024 + 1), "big.txt", "text/plain", 413, "file_too_large"),
])
async def test_bad_uploads_are_refused_and_store_nothing(
    server: ChatServer, data: bytes, name: str, content_type: str, status: int, code: str
) -> None:
    v, welcome = await visitor(server)
    await v.close()
    async with widget_http(server, welcome["token"]) as http:
        r = await upload(http, "/widget/attachments", data, name, content_type)
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] == code
        assert (await http.post("/widget/attachments", content=b"x")).status_code == 400
    async with httpx.AsyncClient(base_url=server.http + "/api/v1") as anonymous:
        assert (await upload(anonymous, "/widget/attachments", PNG, "a.png", "image/png")).status_code == 401


async def test_sales_cannot_upload_and_names_are_made_safe(server: ChatServer) -> None:
    admin = await login(server)
    sales = await create_operator(server, admin, f"sales-{uid()}@example.com", role="sales")
    async with api(server, sales) as http:
        r = await upload(http, "/attachments", b"notes", "a.txt", "text/plain")
        assert r.status_code == 403 and r.json()["error"]["code"] == "read_only"
    async with api(server, admin) as http:
        r = await upload(http, "/attachments", "привет\n".encode(), '../../etc/"pass\x00wd".txt', "text/plain")
        assert r.status_code == 201, r.text
        info = r.json()
        assert info["name"] == "passwd.txt"
        got = await http.get(info["url"].removeprefix("/api/v1"))
        assert got.headers["content-type"] == "text/plain; charset=utf-8" and got.text == "привет\n"
        assert (await http.get("/attachments/999999/x")).status_code == 404


async def test_a_visitor_cannot_fill_the_disk(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
    await migrate.upgrade_async(url)
    settings = Settings(database_url=url, secret_key="test", data_dir=tmp_path / "data", visitor_uploads_per_hour=3)
    rt = runtime_for(settings, RecordingBus())
    try:
        async with rt.db.write() as s:
            contact, _ = await find_or_create_contact(s, IdentityKind.visitor, "uploader", "first visit")
        assert contact.id is not None
        for n in range(3):
            await do_store_attachment(rt, f"note {n}".encode(), f"n{n}.txt", "text/plain", contact_id=contact.id)
        with pytest.raises(ActionError) as refused:
            await do_store_attachment(rt, b"one more", "more.txt", "text/plain", contact_id=contact.id)
        assert refused.value.code == "rate_limited" and refused.value.status == 429
        # Retry-After: when the oldest of the hour's uploads leaves the window.
        assert 3500 < getattr(refused.value, "retry_after", 0) <= 3601
        files = [p for p in (tmp_path / "data" / "attachments").rglob("*") if p.is_file()]
        assert len(files) == 3
    finally:
        await rt.db.dispose()
