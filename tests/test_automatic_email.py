"""Automatic (proactive) emails through the outbound queue to a local SMTP server: both parts,
the RFC 8058 headers, open and click tracking recorded once, unsubscribing by the page and by
one-click (honoured afterwards), and forged tokens refused."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from chat_server.actions.contacts import find_or_create_contact
from chat_server.actions.errors import ActionError
from chat_server.actions.proactive import do_send_proactive
from chat_server.automatic_email import issue
from chat_server.models import Contact, IdentityKind
from chat_server.runtime import Runtime
from tests.appserver import AppServer
from tests.channel_helpers import add_channel, admin, eventually
from tests.mailservers import SmtpSink

pytestmark = pytest.mark.anyio

SUPPORT = "support@acme.test"
LINK = "https://shop.example.com/pricing?plan=pro&ref=mail"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def sink(ca: trustme.CA) -> Iterator[SmtpSink]:
    with SmtpSink(ca) as server:
        yield server


@pytest.fixture
async def app(tmp_path: Path, db_url: str, sink: SmtpSink, ca: trustme.CA) -> AsyncIterator[AppServer]:
    async with AppServer(tmp_path, db_url) as server:
        server.settings.public_url = server.http  # the address mail clients reach us at
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        async with await admin(server) as http:
            await add_channel(http, "email", {
                "address": SUPPORT, "display_name": "Acme", "smtp_host": "127.0.0.1", "smtp_port": sink.port,
                "smtp_security": "starttls", "smtp_username": "smtp-user", "smtp_password": "smtp-password",
                "ca_file": str(ca_file)})
        yield server


def runtime(app: AppServer) -> Runtime:
    rt: Runtime = app.app.state.sockets.rt
    return rt


async def contact_with_email(rt: Runtime, email: str, language: str | None = None) -> int:
    async with rt.db.write() as s:
        contact, _ = await find_or_create_contact(s, IdentityKind.email, email, "test")
        if language:
            contact.properties = {**contact.properties, "language": language}
            s.add(contact)
        assert contact.id is not None
        return contact.id


async def mail_to(sink: SmtpSink, address: str, count: int = 1) -> EmailMessage:
    async def arrived() -> list[EmailMessage]:
        return [r.message for r in sink.received if r.rcpt_tos == [address]]
    found = await eventually(lambda: _at_least(arrived, count), within=30, what=f"mail to {address}")
    return found[-1]


async def _at_least(probe: Any, count: int) -> Any:
    found = await probe()
    return found if len(found) >= count else None


def parts(mail: EmailMessage) -> tuple[str, str]:
    text, rich = mail.get_body(preferencelist=("plain",)), mail.get_body(preferencelist=("html",))
    assert text is not None and rich is not None
    plain, rich_text = str(text.get_content()), str(rich.get_content())  # type: ignore[attr-defined]
    return plain.replace("\r\n", "\n"), rich_text.replace("\r\n", "\n")


async def events(http: httpx.AsyncClient, contact_id: int, name: str) -> list[dict[str, Any]]:
    r = await http.get(f"/contacts/{contact_id}/events", params={"name": name})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_an_automatic_email_arrives_with_both_parts_and_tracks_opens_and_clicks_once(
    app: AppServer, sink: SmtpSink
) -> None:
    rt = runtime(app)
    contact_id = await contact_with_email(rt, "anna@example.org")
    stored = await do_send_proactive(rt, contact_id, f"Hi Anna,\n\nour new plans <3: {LINK}.\nSee you!",
                                     channel="email", subject="Our new plans", client_msg_id="trigger-1:1")
    assert (stored.message.channel, stored.message.kind, stored.message.delivery_state) == ("email", "automatic", "pending")
    mail = await mail_to(sink, "anna@example.org")
    assert mail["Subject"] == "Our new plans" and mail["To"] == "anna@example.org" and SUPPORT in mail["From"]
    assert mail["Auto-Submitted"] == "auto-generated" and mail["In-Reply-To"] is None
    assert mail.get_content_type() == "multipart/alternative"
    text, rich = parts(mail)
    assert text.startswith(f"Hi Anna,\n\nour new plans <3: {LINK}.\nSee you!")
    unsubscribe = re.fullmatch(r"<(http://[^>]+)>", str(mail["List-Unsubscribe"]))
    assert unsubscribe and unsubscribe.group(1).startswith(f"{app.http}/api/v1/email/unsubscribe/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe.group(1) in text and "automatic message from Acme." in text  # the text part's own link
    assert "our new plans &lt;3:" in rich and "<br>" in rich  # escaped, lines kept
    clicks = [html.unescape(u) for u in re.findall(r'<a href="([^"]+/api/v1/email/click/[^"]+)"', rich)]
    pixels = [html.unescape(u) for u in re.findall(r'<img src="([^"]+)"', rich)]
    assert len(clicks) == 1 and len(pixels) == 1 and f">{html.escape(LINK)}</a>." in rich

    async with await admin(app) as staff:
        async def sent() -> bool:
            r = await staff.get(f"/conversations/{stored.conversation.id}/messages")
            return any(m["id"] == stored.message.id and m["delivery_state"] == "sent" for m in r.json()["items"])
        await eventually(sent, what="the automatic email marked sent")
        async with httpx.AsyncClient() as web:
            for _ in range(2):  # a second open (or a mail client loading images again) is not a second read
                r = await web.get(pixels[0])
                assert r.status_code == 200 and r.headers["content-type"] == "image/gif" and r.content.startswith(b"GIF")
                r = await web.get(clicks[0], follow_redirects=False)
                assert r.status_code == 302 and r.headers["location"] == LINK
        read = await events(staff, contact_id, "triggered_message_read")
        clicked = await events(staff, contact_id, "triggered_message_clicked")
        assert [e["properties"] for e in read] == [{"message_id": stored.message.id}]
        assert [e["properties"] for e in clicked] == [{"message_id": stored.message.id}]


async def test_forged_or_garbled_tokens_are_refused_and_record_nothing(app: AppServer, sink: SmtpSink) -> None:
    rt = runtime(app)
    contact_id = await contact_with_email(rt, "eve@example.org")
    stored = await do_send_proactive(rt, contact_id, "Hello", channel="email")
    message_id = stored.message.id
    assert message_id is not None
    secret = app.settings.effective_secret_key
    genuine = issue(secret, "open", message_id)
    tampered = genuine[:-3] + ("AAA" if not genuine.endswith("AAA") else "BBB")
    async with httpx.AsyncClient(base_url=app.http + "/api/v1") as web:
        for path in [f"/email/open/{tampered}", "/email/open/x", f"/email/open/{'a' * 4000}",
                     f"/email/click/{genuine}",  # a token of another purpose
                     f"/email/click/{issue('not-our-secret', 'click', message_id, LINK)}",
                     # even with our key, only web addresses are ever redirected to
                     f"/email/click/{issue(secret, 'click', message_id, 'javascript:alert(1)')}",
                     f"/email/click/{issue(secret, 'click', message_id, '//evil.example/')}"]:
            r = await web.get(path, follow_redirects=False)
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_token", (path, r.text)
        for method in ("GET", "POST"):
            r = await web.request(method, f"/email/unsubscribe/{tampered}")
            assert r.status_code == 400 and "damaged" in r.text and "text/html" in r.headers["content-type"]
        # A genuine token for a message that is no automatic email.
        r = await web.get(f"/email/open/{issue(secret, 'open', 9_000_000_000_000_000_000)}")
        assert r.status_code == 404
    async with await admin(app) as staff:
        assert await events(staff, contact_id, "triggered_message_read") == []
        assert (await staff.get(f"/contacts/{contact_id}/proactive")).json()["unsubscribed"] == []


async def test_one_click_and_the_page_both_unsubscribe_and_later_sends_are_refused(app: AppServer, sink: SmtpSink) -> None:
    rt = runtime(app)
    one_click = await contact_with_email(rt, "ivan@example.org", language="ru-RU")
    by_page = await contact_with_email(rt, "jane@example.org")
    for contact_id in (one_click, by_page):
        await do_send_proactive(rt, contact_id, "Новые тарифы", channel="email", subject="Тарифы")
    ivan, jane = await mail_to(sink, "ivan@example.org"), await mail_to(sink, "jane@example.org")
    assert "Отписаться" in parts(ivan)[1] and "Unsubscribe" in parts(jane)[1]
    ivan_url = str(ivan["List-Unsubscribe"]).strip("<>")
    jane_url = str(jane["List-Unsubscribe"]).strip("<>")
    async with httpx.AsyncClient() as web, await admin(app) as staff:
        # The page asks first, in the contact's language: fetching it changes nothing.
        page = await web.get(ivan_url)
        assert page.status_code == 200 and "Отписаться" in page.text and "ivan@example.org" in page.text
        assert (await staff.get(f"/contacts/{one_click}/proactive")).json()["unsubscribed"] == []
        # RFC 8058: the mail client POSTs the one-click body to the List-Unsubscribe address.
        for _ in range(2):
            r = await web.post(ivan_url, content=b"List-Unsubscribe=One-Click",
                               headers={"content-type": "application/x-www-form-urlencoded"})
            assert r.status_code == 200 and "Готово" in r.text
        # The page's own button posts its form to the same address.
        page = await web.get(jane_url)
        field = re.search(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', page.text)
        assert field and '<form method="post">' in page.text
        r = await web.post(jane_url, data={field.group(1): field.group(2)})
        assert r.status_code == 200 and "no more automatic emails" in r.text
        for contact_id in (one_click, by_page):
            card = (await staff.get(f"/contacts/{contact_id}/proactive")).json()
            assert [u["channel"] for u in card["unsubscribed"]] == ["email"]
            unsubscribed = await events(staff, contact_id, "triggered_message_unsubscribed")
            assert len(unsubscribed) == 1 and set(unsubscribed[0]["properties"]) == {"message_id"}
    before = len(sink.received)
    for contact_id in (one_click, by_page):
        with pytest.raises(ActionError) as refused:
            await do_send_proactive(rt, contact_id, "One more?", channel="email")
        assert refused.value.code == "unreachable" and "unsubscribed" in refused.value.message
    # Other channels are not affected: the widget still takes an automatic message.
    assert (await do_send_proactive(rt, one_click, "Hi in the chat")).message.channel == "widget"
    assert len(sink.received) == before


async def test_an_email_send_needs_an_address(app: AppServer) -> None:
    rt = runtime(app)
    async with rt.db.write() as s:
        contact, _ = await find_or_create_contact(s, IdentityKind.visitor, "v-no-mail", "first visit")
    assert contact.id is not None
    with pytest.raises(ActionError) as refused:
        await do_send_proactive(rt, contact.id, "Hello", channel="email")
    assert refused.value.code == "unreachable"
    async with rt.db.write() as s:  # an address left in the widget (no identity) is enough
        row = await s.get(Contact, contact.id)
        assert row is not None
        row.email = "left@example.org"
        s.add(row)
    assert (await do_send_proactive(rt, contact.id, "Hello", channel="email")).message.meta["to"] == "left@example.org"


async def test_a_deferred_automatic_email_is_retried_and_arrives_once(app: AppServer, sink: SmtpSink) -> None:
    rt = runtime(app)
    contact_id = await contact_with_email(rt, "retry@example.org")
    sink.defer = 1  # the provider's bad day: 451 to the first try
    stored = await do_send_proactive(rt, contact_id, "Your cart is waiting", channel="email", subject="Your cart")
    mail = await mail_to(sink, "retry@example.org")
    async with await admin(app) as staff:
        async def sent() -> bool:
            r = await staff.get(f"/conversations/{stored.conversation.id}/messages")
            return any(m["id"] == stored.message.id and m["delivery_state"] == "sent" for m in r.json()["items"])
        await eventually(sent, within=30, what="the automatic email marked sent after its retry")
    assert sink.defer == 0 and [r.rcpt_tos for r in sink.received].count(["retry@example.org"]) == 1
    assert mail["Subject"] == "Your cart" and mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
