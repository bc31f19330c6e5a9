"""Email: an SMTP listener (aiosmtpd) and IMAP polling of a real Dovecot in, replies through
an SMTP server with STARTTLS and AUTH out; threading as real clients reply, charsets,
HTML-only mail, attachments, and machine mail that must never loop."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from integrations.email import EmailConfig, parse_email
from tests.appserver import AppServer
from tests.channel_helpers import FIXTURES, add_channel, admin, conversations, eventually, thread
from tests.mailservers import PASSWORD, USER, DovecotServer, SmtpSink
from tests.services import free_port

pytestmark = pytest.mark.anyio

SUPPORT = "support@acme.test"


def eml(name: str, **replace: str) -> bytes:
    raw = (FIXTURES / "email" / f"{name}.eml").read_bytes()
    for key, value in replace.items():
        raw = raw.replace(f"__{key.upper()}__".encode(), value.encode())
    return raw


def first_mail(sender: str = "Anna Smirnova <anna@example.org>", subject: str = "Where is my order?",
               message_id: str = "<first-1@example.org>", body: str = "Hi, where is my order #42?") -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = sender, SUPPORT, subject, message_id
    m["Date"] = "Mon, 23 Nov 2026 09:00:00 +0300"
    m.set_content(body)
    return m.as_bytes()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def sink(ca: trustme.CA) -> Iterator[SmtpSink]:
    with SmtpSink(ca) as server:
        yield server


@pytest.fixture
async def app(tmp_path: Path, db_url: str) -> AsyncIterator[AppServer]:
    async with AppServer(tmp_path, db_url) as server:
        yield server


def mailbox_config(sink: SmtpSink, ca: trustme.CA, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return {"address": SUPPORT, "display_name": "Acme Support", "smtp_host": "127.0.0.1", "smtp_port": sink.port,
            "smtp_security": "starttls", "smtp_username": "smtp-user", "smtp_password": "smtp-password",
            "ca_file": str(ca_file), **extra}


@pytest.fixture
async def mailbox(app: AppServer, sink: SmtpSink, ca: trustme.CA,
                  tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    port = free_port()
    async with await admin(app) as http:
        await add_channel(http, "email", mailbox_config(sink, ca, tmp_path, listen_port=port))
        yield http, port


async def smtp_in(port: int, raw: bytes, to: str = SUPPORT, sender: str = "someone@example.org") -> None:
    def send() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail(sender, [to], raw)
    await asyncio.to_thread(send)  # the app serves from this very event loop


async def the_thread(http: httpx.AsyncClient, count: int) -> tuple[int, list[dict[str, Any]]]:
    async def probe() -> tuple[int, list[dict[str, Any]]] | None:
        convs = await conversations(http)
        if len(convs) != 1:
            return None
        items = [m for m in await thread(http, convs[0]["id"]) if m["kind"] == "text"]
        return (convs[0]["id"], items) if len(items) >= count else None
    return await eventually(probe, what=f"{count} messages in one thread")


async def reply(http: httpx.AsyncClient, sink: SmtpSink, conv_id: int, text: str) -> EmailMessage:
    before = len(sink.received)
    r = await http.post(f"/conversations/{conv_id}/messages", json={"text": text})
    assert r.status_code == 201, r.text
    await eventually(lambda: _true(len(sink.received) > before), what="reply at the SMTP server")
    return sink.received[-1].message


async def _true(value: bool) -> bool:
    return value


async def test_gmail_and_thunderbird_replies_thread_into_one_conversation(mailbox: Any, sink: SmtpSink) -> None:
    http, port = mailbox
    await smtp_in(port, first_mail())
    conv_id, [first] = await the_thread(http, 1)
    assert (first["channel"], first["text"], first["author"]["name"]) == ("email", "Hi, where is my order #42?",
                                                                         "Anna Smirnova")
    out = await reply(http, sink, conv_id, "Your order ships tomorrow.")
    assert sink.received[-1].login == "smtp-user" and sink.received[-1].rcpt_tos == ["anna@example.org"]
    assert out["To"] == "anna@example.org" and "support@acme.test" in out["From"]
    assert out["Subject"] == "Re: Where is my order?"
    assert out["In-Reply-To"] == "<first-1@example.org>" and "<first-1@example.org>" in out["References"]
    assert out["Reply-To"].addresses[0].username.startswith("reply+c")
    assert out["Message-ID"].endswith("@acme.test>")
    assert out.get_content().strip() == "Your order ships tomorrow."
    ours = out["Message-ID"]
    # A reply as Gmail writes it: answers our Message-ID, quotes us below "On ... wrote:".
    await smtp_in(port, eml("gmail_reply", inreplyto=ours, references=f"<first-1@example.org> {ours}", to=SUPPORT))
    _, items = await the_thread(http, 3)
    gmail = items[-1]
    assert gmail["text"] == "Thanks, that helps! One more thing: can I change the address?"
    original = (await http.get(f"/messages/{gmail['id']}/original")).json()
    assert "> Your order ships tomorrow." in original["original"] and original["subject"] == "Re: Where is my order?"
    # Thunderbird: quote and "-- " signature cut.
    await smtp_in(port, eml("thunderbird_reply", inreplyto=ours, references=ours, to=SUPPORT))
    _, items = await the_thread(http, 4)
    assert items[-1]["text"] == "Got it, thank you."
    original = (await http.get(f"/messages/{items[-1]['id']}/original")).json()
    assert original["signature"] == "Anna Smirnova\nHead of Purchasing"  # shown apart, not lost
    assert len(await conversations(http)) == 1


async def test_outlook_reply_without_thread_headers_threads_by_the_reply_token(mailbox: Any, sink: SmtpSink) -> None:
    http, port = mailbox
    await smtp_in(port, first_mail("Boris Kuznetsov <boris@corp.example>", "Refund", "<b-1@corp.example>"))
    conv_id, _ = await the_thread(http, 1)
    out = await reply(http, sink, conv_id, "Shall we refund the order?")
    reply_to = out["Reply-To"].addresses[0].addr_spec
    await smtp_in(port, eml("outlook_reply", to=reply_to), to=reply_to)
    _, items = await the_thread(http, 3)
    assert items[-1]["text"] == "Yes, please go ahead with the refund.\n\nRegards,\nBoris"
    assert "-----Original Message-----" in (await http.get(f"/messages/{items[-1]['id']}/original")).json()["original"]


async def test_new_mail_from_a_known_address_joins_that_contact(mailbox: Any) -> None:
    http, port = mailbox
    await smtp_in(port, first_mail())
    await smtp_in(port, first_mail(subject="Another question", message_id="<second@example.org>", body="Also: invoice?"))
    _, items = await the_thread(http, 2)
    assert [m["text"] for m in items] == ["Hi, where is my order #42?", "Also: invoice?"]


@pytest.mark.parametrize(("name", "sender", "subject", "text"), [
    ("windows1251", "Пётр Сидоров", "Заказ не пришёл", "Здравствуйте! Мой заказ №42 не пришёл. Помогите, пожалуйста."),
    ("koi8r", None, "Оплата счёта", "Добрый день! Счёт оплачен, жду подтверждения."),
])
async def test_cyrillic_charsets_decode(mailbox: Any, name: str, sender: str | None, subject: str, text: str) -> None:
    http, port = mailbox
    await smtp_in(port, eml(name))
    _, [m] = await the_thread(http, 1)
    assert m["text"] == text and m["author"]["name"] == sender
    assert (await http.get(f"/messages/{m['id']}/original")).json()["subject"] == subject


async def test_html_only_mail_becomes_safe_text(mailbox: Any) -> None:
    http, port = mailbox
    await smtp_in(port, eml("html_only"))
    _, [m] = await the_thread(http, 1)
    # Paragraphs stay paragraphs; the line breaks of the HTML source are not the text's.
    assert m["text"] == "Hello & good morning,\n\nDo you offer annual plans? Price < 100€?\n\nCarl"
    assert "alert" not in m["text"] and "<" not in m["text"].replace("< 100", "")


async def test_a_line_over_998_characters_is_accepted_and_stored(mailbox: Any) -> None:
    """Real clients send HTML parts with lines far over RFC 5322's 998 characters; a permanent
    "500 Line too long" would make the sender's server bounce the customer's mail."""
    http, port = mailbox
    sentence = "Здравствуйте, пришлите, пожалуйста, счёт на оплату заказа №42 на реквизиты ООО «Ромашка». "
    html_line = "<html><body><div>" + sentence * 40 + "</div></body></html>"  # ~3,700 characters, 6,700 bytes
    raw = ("From: Иван <ivan@example.org>\r\nTo: support@acme.test\r\nSubject: Счёт\r\n"
           "Message-ID: <long-line-1@example.org>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           + html_line + "\r\n").encode()
    assert max(len(line) for line in raw.split(b"\r\n")) > 998

    def send() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.ehlo()
            smtp.mail("ivan@example.org")
            smtp.rcpt(SUPPORT)
            return smtp.data(raw)
    code, answer = await asyncio.to_thread(send)
    assert code == 250, answer
    _, [m] = await the_thread(http, 1)
    assert m["text"] == (sentence * 40).strip()


async def test_attachments_are_kept(mailbox: Any, app: AppServer) -> None:
    http, port = mailbox
    await smtp_in(port, eml("with_attachment"))
    _, [m] = await the_thread(http, 1)
    [a] = m["attachments"]
    assert (a["name"], a["content_type"]) == ("invoice-42.pdf", "application/pdf")
    assert (await http.get(app.http + a["url"])).content == b"%PDF-1.4 fake invoice"


async def test_auto_replies_bounces_and_bulk_mail_never_become_messages(mailbox: Any, sink: SmtpSink) -> None:
    http, port = mailbox
    await smtp_in(port, first_mail())
    conv_id, _ = await the_thread(http, 1)
    out = await reply(http, sink, conv_id, "Your order ships tomorrow.")
    for name in ("auto_reply", "bounce", "precedence_bulk"):
        await smtp_in(port, eml(name, inreplyto=out["Message-ID"]))
    await smtp_in(port, first_mail(subject="Real one", message_id="<real@example.org>", body="A real follow-up"))
    _, items = await the_thread(http, 3)
    assert [m["text"] for m in items] == ["Hi, where is my order #42?", "Your order ships tomorrow.", "A real follow-up"]
    assert len(sink.received) == 1  # nothing answered the machines


async def test_a_refused_address_shows_the_reply_failed_with_the_reason(mailbox: Any, sink: SmtpSink) -> None:
    http, port = mailbox
    await smtp_in(port, first_mail())
    conv_id, _ = await the_thread(http, 1)
    sink.refuse.add("anna@example.org")
    r = await http.post(f"/conversations/{conv_id}/messages", json={"text": "Hello?"})
    reply_id = r.json()["message"]["id"]

    async def failed() -> Any:
        return [m for m in await thread(http, conv_id) if m["id"] == reply_id and m["delivery_state"] == "failed"]
    [m] = await eventually(failed, what="failed reply")
    assert "User unknown" in m["delivery_error"] and sink.received == []


async def test_imap_polling_fetches_each_message_once_across_restarts(
    tmp_path: Path, db_url: str, sink: SmtpSink, ca: trustme.CA,
) -> None:
    with DovecotServer() as dovecot:
        dovecot.deliver(first_mail())
        dovecot.deliver(eml("windows1251"))
        config = mailbox_config(sink, ca, tmp_path, imap_host="127.0.0.1", imap_port=dovecot.port,
                                imap_security="none", imap_username=USER, imap_password=PASSWORD, poll_seconds=0.2)
        async with AppServer(tmp_path, db_url) as app, await admin(app) as http:
            instance = await add_channel(http, "email", config)

            async def cursor(expected: str) -> Any:
                got = (await http.get(f"/channels/{instance['id']}")).json()["cursor"]
                return got if got and got.endswith(expected) else None
            await eventually(lambda: cursor(":2"), what="two messages fetched")
            assert len(await conversations(http)) == 2
        dovecot.deliver(first_mail(subject="Later", message_id="<later@example.org>", body="One more"))
        async with AppServer(tmp_path, db_url) as app, await admin(app) as http:
            await eventually(lambda: cursor(":3"), what="the third message fetched after a restart")
            texts = sorted([m["text"] for c in await conversations(http) for m in await thread(http, c["id"])])
            assert texts == ["Hi, where is my order #42?", "One more",
                             "Здравствуйте! Мой заказ №42 не пришёл. Помогите, пожалуйста."]
        assert all(b"\\Seen" not in flags for flags in dovecot.seen_flags())  # the mailbox is left as it was


def test_parsing_keeps_thread_ids_and_finds_the_reply_token() -> None:
    config = EmailConfig(address=SUPPORT)
    msg = parse_email(eml("gmail_reply", inreplyto="<ours@acme.test>", references="<a@x> <ours@acme.test>",
                          to="reply+c7xdeadbeef@acme.test"), config)
    assert msg.thread_ids == ["<a@x>", "<ours@acme.test>"] and msg.reply_token == "c7xdeadbeef"
    assert msg.external_id == "<CAF3xk+Zq1gmail@mail.gmail.com>" and msg.ignored is None
    assert parse_email(first_mail(sender=SUPPORT), config).ignored == "sent by ourselves"
