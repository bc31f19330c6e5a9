"""Email: an SMTP listener (aiosmtpd) and IMAP polling (aioimaplib) in, SMTP out.

Parsing is the stdlib `email` package (charsets, MIME); quoted history and signatures are
told apart from the reply in email_quotes (HTML by its structure, text by quote headers).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import smtplib
import ssl
import weakref
from collections.abc import Mapping
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from typing import Any, Literal

import aioimaplib
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from pydantic import Field

from .base import (
    ChannelConfig,
    DownloadPolicy,
    Event,
    Handle,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    Sent,
    WebhookAnswer,
)
from .email_check import check_mailbox
from .email_quotes import Extracted, extract_html, extract_text

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 30 * 1024 * 1024
_MSGID = re.compile(r"<[^<>\s]+>")
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|пересл|переслано|wg|tr|rv|enc)\s*:", re.I)


class EmailConfig(ChannelConfig):
    address: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    display_name: str = Field(default="", max_length=200)
    # Replies carry Reply-To: <reply_local>+<token>@<reply_domain> (the address's domain when
    # empty); mail to it must reach the listener or the mailbox below.
    reply_local: str = Field(default="reply", max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    reply_domain: str = Field(default="", max_length=255)
    smtp_host: str = Field(default="", max_length=255)
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "ssl"] = "starttls"
    smtp_username: str = Field(default="", max_length=320)
    smtp_password: str = Field(default="", max_length=500)
    # A CA bundle (PEM) to trust besides the system's, for servers with a private CA.
    ca_file: str = Field(default="", max_length=500)
    imap_host: str = Field(default="", max_length=255)
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_security: Literal["none", "ssl"] = "ssl"
    imap_username: str = Field(default="", max_length=320)
    imap_password: str = Field(default="", max_length=500)
    imap_folder: str = Field(default="INBOX", max_length=200)
    poll_seconds: float = Field(default=60, ge=0.2, le=3600)
    # The SMTP listener for a forwarding address; off when no port is given.
    listen_host: str = Field(default="127.0.0.1", max_length=255)
    listen_port: int | None = Field(default=None, ge=1, le=65535)

    @property
    def domain(self) -> str:
        return self.reply_domain or self.address.rsplit("@", 1)[1]


def _decode(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        return content if isinstance(content, str) else content.decode("utf-8", "replace")
    except (LookupError, UnicodeError):  # an unknown or lying charset: keep what we can
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def read_body(m: EmailMessage) -> Extracted:
    """The reply, its signature and the whole text. The HTML part is read by its structure when it
    shows where the quote is; the plain part, when there is one, stays the original as it came."""
    plain_part, html_part = m.get_body(preferencelist=("plain",)), m.get_body(preferencelist=("html",))
    plain = extract_text(_decode(plain_part)) if plain_part is not None else None
    rich = extract_html(_decode(html_part)) if html_part is not None else None
    found = plain or rich or Extracted("", None, "")
    if rich is not None and rich.text and (plain is None or not plain.text or rich.quoted):
        if plain is not None and plain.text:
            rich.original = plain.original
        found = rich
    if _FORWARD_SUBJECT.match(str(m.get("Subject") or "")):
        # "Fwd:" — what was forwarded is what the person sends us; Outlook marks a forward only
        # with the same header block as a reply, so nothing is cut.
        whole = plain.original if plain is not None and plain.text else found.original
        return Extracted(whole, None, whole)
    return found


def auto_reason(m: Message) -> str | None:
    """Why this is machine mail that must never become a customer message (or get a reply)."""
    auto = (m.get("Auto-Submitted") or "").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = (m.get("Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if m.get("X-Autoreply") or m.get("X-Autorespond") or m.get("X-Auto-Response"):
        return "auto-reply header"
    if m.get_content_type() == "multipart/report" or m.get("X-Failed-Recipients"):
        return "delivery status notification"
    sender = parseaddr(str(m.get("From") or ""))[1].lower()
    if sender.split("@")[0] in ("mailer-daemon", "postmaster") or (m.get("Return-Path") or "").strip() == "<>":
        return "bounce"
    return None


def message_ids(value: str | None) -> list[str]:
    return _MSGID.findall(value or "")


def _reply_token(addresses: list[str], local: str) -> str | None:
    prefix = local.lower() + "+"
    for addr in addresses:
        name = addr.lower().rsplit("@", 1)[0]
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    return None


def parse_email(raw: bytes, config: EmailConfig, envelope_rcpts: list[str] | None = None) -> InboundMessage:
    m = BytesParser(policy=policy.default).parsebytes(raw)
    name, sender = parseaddr(str(m.get("From") or ""))
    sender = sender.lower()
    mid = (message_ids(str(m.get("Message-ID") or "")) or [""])[0]
    external = mid if mid and len(mid) <= 200 else "sha256:" + hashlib.sha256(raw).hexdigest()
    msg = InboundMessage(external_id=external, sender_id=sender, text="", sender_name=name or None)
    msg.ignored = auto_reason(m)
    if not sender or "@" not in sender:
        msg.ignored = "no sender address"
    elif sender == config.address.lower():
        msg.ignored = "sent by ourselves"
    msg.subject = str(m.get("Subject") or "") or None
    refs = message_ids(str(m.get("References") or "")) + message_ids(str(m.get("In-Reply-To") or ""))
    msg.thread_ids = list(dict.fromkeys(refs))
    heads = [str(v) for h in ("To", "Cc", "Delivered-To", "X-Original-To") for v in m.get_all(h, [])]
    msg.reply_token = _reply_token([a for _, a in getaddresses(heads)] + (envelope_rcpts or []), config.reply_local)
    body = read_body(m)
    msg.text, msg.signature, msg.original = body.text, body.signature, body.original
    for part in m.iter_attachments():
        if part.get_content_maintype() == "multipart":
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes) and data:
            msg.attachments.append(InboundAttachment(
                name=part.get_filename() or "attachment", content_type=part.get_content_type(), data=data))
    return msg


def build_reply(config: EmailConfig, message: OutboundMessage) -> EmailMessage:
    e = EmailMessage()
    e["From"] = Address(config.display_name or "", addr_spec=config.address)
    e["To"] = message.recipient
    subject = message.subject or (f"Your conversation with {config.display_name}" if config.display_name
                                  else "Your conversation with us")
    e["Subject"] = subject if message.new_thread or subject.lower().startswith("re:") else f"Re: {subject}"
    # Derived from our message id, so a retried send carries the same id and clients fold it.
    digest = hashlib.sha256(f"{config.address}:{message.message_id}".encode()).hexdigest()[:16]
    e["Message-ID"] = f"<chat.{message.message_id}.{digest}@{config.domain}>"
    if message.in_reply_to:
        e["In-Reply-To"] = message.in_reply_to
    refs = list(dict.fromkeys([*message.references, *([message.in_reply_to] if message.in_reply_to else [])]))
    if refs:
        e["References"] = " ".join(refs[-20:])
    if message.reply_token:
        reply_to = f"{config.reply_local}+{message.reply_token}@{config.domain}"
        e["Reply-To"] = Address(config.display_name or "", addr_spec=reply_to)
    for name, value in message.headers.items():
        e[name] = value
    e.set_content(message.text)
    if message.html is not None:
        e.add_alternative(message.html, subtype="html")
    for a in message.attachments:
        main, _, sub = a.content_type.partition("/")
        e.add_attachment(a.data, maintype=main or "application", subtype=sub or "octet-stream", filename=a.name)
    return e


def _tls(config: EmailConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if config.ca_file:
        context.load_verify_locations(cafile=config.ca_file)
    return context


def _smtp_send(config: EmailConfig, e: EmailMessage) -> None:
    context = _tls(config)
    smtp: smtplib.SMTP
    if config.smtp_security == "ssl":
        smtp = smtplib.SMTP_SSL(config.smtp_host, config.smtp_port, timeout=60, context=context)
    else:
        smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=60)
    with smtp:
        if config.smtp_security == "starttls":
            smtp.starttls(context=context)
        if config.smtp_username:
            smtp.login(config.smtp_username, config.smtp_password)
        smtp.send_message(e)


class _Receiver(SMTPServer):
    # RFC 5322 asks for lines of at most 998 characters, but real clients send longer ones in
    # HTML parts. aiosmtpd refuses those with a permanent "500 Line too long", and the sender's
    # server bounces the customer's mail; we take any line the size limit allows.
    line_length_limit = MAX_MESSAGE_BYTES


class _Inbox:
    """aiosmtpd handler: each accepted message is stored before we answer 250."""

    def __init__(self, handle: Handle) -> None:
        self.handle = handle

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        if isinstance(envelope.content, bytes) and not raw:
            raw = envelope.content
        try:
            await self.handle([{"raw": raw, "rcpt": list(envelope.rcpt_tos)}], None)
        except Exception:
            log.exception("storing an incoming email failed")
            return "451 4.3.0 Temporary failure, try again later"
        return "250 2.0.0 OK"


class EmailAdapter:
    channel = "email"
    config_model = EmailConfig
    secret_fields = ("smtp_password", "imap_password")
    downloads = DownloadPolicy()  # mail carries its files: nothing is fetched from a URL

    async def webhook(self, config: EmailConfig, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        return WebhookAnswer(404, "email has no webhook")

    async def parse(self, config: EmailConfig, update: Any) -> list[Event]:
        raw = update["raw"]
        if len(raw) > MAX_MESSAGE_BYTES:
            log.warning("dropping an email of %d bytes", len(raw))
            return []
        return [parse_email(raw, config, update.get("rcpt"))]

    async def send(self, config: EmailConfig, message: OutboundMessage) -> Sent:
        if not config.smtp_host:
            raise PermanentFailure("this mailbox has no SMTP server configured")
        e = build_reply(config, message)
        try:
            await asyncio.to_thread(_smtp_send, config, e)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"the mail server refused the address: {exc.recipients}") from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(f"the mail server refused: {exc.smtp_code} {exc.smtp_error!r}") from exc
            raise
        return Sent(str(e["Message-ID"]))

    async def listen(self, config: EmailConfig, cursor: str | None, handle: Handle) -> None:
        tasks = []
        if config.listen_port:
            tasks.append(self._serve_smtp(config, handle))
        if config.imap_host:
            tasks.append(self._poll_imap(config, cursor, handle))
        if tasks:
            await asyncio.gather(*tasks)

    async def _serve_smtp(self, config: EmailConfig, handle: Handle) -> None:
        inbox = _Inbox(handle)
        loop = asyncio.get_running_loop()
        sessions: weakref.WeakSet[SMTPServer] = weakref.WeakSet()

        def session() -> SMTPServer:
            smtp = _Receiver(inbox, data_size_limit=MAX_MESSAGE_BYTES, enable_SMTPUTF8=True,
                             hostname=config.domain, ident="chat-server")
            sessions.add(smtp)
            return smtp

        try:
            server = await loop.create_server(session, config.listen_host, config.listen_port)
        except OSError as exc:
            handle.failed(f"the SMTP listener could not open {config.listen_host}:{config.listen_port}: {exc}")
            raise
        handle.reached()
        try:
            await server.serve_forever()
        finally:
            server.close()
            # Closing the server stops new sessions only; end the open ones too.
            for smtp in list(sessions):
                if smtp.transport is not None:
                    smtp.transport.close()

    async def _poll_imap(self, config: EmailConfig, cursor: str | None, handle: Handle) -> None:
        failures = 0
        while True:
            try:
                cursor = await self._imap_once(config, cursor, handle)
                failures = 0
                handle.reached()
                await asyncio.sleep(config.poll_seconds)
            except (TimeoutError, OSError, aioimaplib.Abort, aioimaplib.Error, ImapError) as exc:
                failures += 1
                handle.failed(f"IMAP polling of {config.imap_host} failed: {exc or type(exc).__name__}")
                log.warning("IMAP polling failed (%d in a row)", failures, exc_info=True)
                await asyncio.sleep(min(300, config.poll_seconds * 2**failures))

    async def _imap_once(self, config: EmailConfig, cursor: str | None, handle: Handle) -> str | None:
        """Fetch what arrived since the cursor (`uidvalidity:last uid`), one message at a time,
        moving the cursor only past stored mail. Messages are read with BODY.PEEK: the mailbox
        is left as it was."""
        if config.imap_security == "ssl":
            imap = aioimaplib.IMAP4_SSL(host=config.imap_host, port=config.imap_port, timeout=60,
                                        ssl_context=_tls(config))
        else:
            imap = aioimaplib.IMAP4(host=config.imap_host, port=config.imap_port, timeout=60)
        await imap.wait_hello_from_server()
        try:
            _ok(await imap.login(config.imap_username, config.imap_password), "login")
            selected = _ok(await imap.select(config.imap_folder), "select")
            validity = _uidvalidity(selected.lines)
            known_validity, _, last = (cursor or "").partition(":")
            last_uid = int(last) if known_validity == validity and last.isdigit() else 0
            found = _ok(await imap.uid_search(f"UID {last_uid + 1}:*"), "search")
            uids = sorted(int(u) for line in found.lines[:1] for u in line.decode().split() if u.isdigit())
            for uid in (u for u in uids if u > last_uid):
                fetched = _ok(await imap.uid("fetch", str(uid), "(BODY.PEEK[])"), "fetch")
                raw = next((bytes(line) for line in fetched.lines if isinstance(line, bytearray)), None)
                cursor = f"{validity}:{uid}"
                await handle([{"raw": raw, "rcpt": []}] if raw else [], cursor)
            return cursor if uids else cursor or (f"{validity}:{last_uid}" if validity else None)
        finally:
            try:
                await imap.logout()
            except Exception:  # the server may already have hung up
                log.debug("IMAP logout failed", exc_info=True)

    async def check(self, config: EmailConfig) -> dict[str, Any]:
        return await check_mailbox(config)

    async def register(self, config: EmailConfig, webhook_url: str) -> None:
        return None

    async def profile_name(self, config: EmailConfig, sender_id: str) -> str | None:
        return None

    def link_url(self, config: EmailConfig, token: str) -> str | None:
        return None


class ImapError(Exception):
    pass


def _ok(response: Any, what: str) -> Any:
    if response.result != "OK":
        raise ImapError(f"IMAP {what} failed: {response.result} {response.lines[-1:]!r}")
    return response


def _uidvalidity(lines: list[Any]) -> str:
    for line in lines:
        text = line.decode(errors="replace") if isinstance(line, bytes | bytearray) else str(line)
        found = re.search(r"UIDVALIDITY (\d+)", text)
        if found:
            return found.group(1)
    return ""
