"""Telegram bots through aiogram: webhook or long polling in, Bot API calls out."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates
from aiogram.types import BufferedInputFile, Message, Update
from pydantic import Field, ValidationError

from .base import (
    ChannelConfig,
    ChannelState,
    DownloadPolicy,
    DownloadRefused,
    Event,
    Handle,
    InboundAttachment,
    InboundMessage,
    OutboundAttachment,
    OutboundMessage,
    PermanentFailure,
    RetryLater,
    Sent,
    WebhookAnswer,
    poll_retry_delay,
    split_text,
)
from .telegram_check import check_bot

log = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
# my_chat_member tells us when a person blocks (or unblocks) the bot.
UPDATES = ["message", "edited_message", "my_chat_member"]
MAX_TEXT = 4096
MAX_CAPTION = 1024


class TelegramConfig(ChannelConfig):
    token: str = Field(min_length=10, max_length=200, pattern=r"^\d+:[A-Za-z0-9_-]+$")
    # Filled in from getMe when the token is checked on save (left empty, or given wrong).
    bot_username: str = Field(default="", max_length=64, pattern=r"^([A-Za-z0-9_]{3,64})?$")
    mode: Literal["webhook", "polling"] = "polling"
    # Telegram sends it back in a header with every webhook call; we refuse calls without it.
    webhook_secret: str = Field(default_factory=lambda: secrets.token_urlsafe(32), pattern=r"^[A-Za-z0-9_-]{16,256}$")
    # Our public base URL (https://chat.example.com) for setWebhook in webhook mode.
    public_url: str | None = Field(default=None, max_length=500)
    # A self-hosted Bot API server; the public one when empty.
    api_base: str | None = Field(default=None, max_length=500)
    poll_timeout: int = Field(default=25, ge=0, le=50)


def _bot(config: TelegramConfig) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(config.api_base)) if config.api_base else AiohttpSession()
    return Bot(config.token, session=session)


def _bot_id(config: TelegramConfig) -> str:
    return config.token.split(":", 1)[0]


# Files a message may carry besides photos and stickers, with the name and type to use when
# the payload gives none. An animation also carries `document`: it is looked at first.
FILES = [
    ("animation", "animation.mp4", "video/mp4"),
    ("document", "document", "application/octet-stream"),
    ("voice", "voice.ogg", "audio/ogg"),
    ("audio", "audio.mp3", "audio/mpeg"),
    ("video", "video.mp4", "video/mp4"),
    ("video_note", "video_note.mp4", "video/mp4"),
]
# Fields of every message, which say nothing about its content.
ENVELOPE = {"message_id", "message_thread_id", "from", "sender_chat", "chat", "date", "edit_date", "text",
            "caption", "entities", "caption_entities", "reply_to_message", "quote", "forward_origin",
            "forward_from", "forward_from_chat", "forward_sender_name", "forward_date", "is_automatic_forward",
            "has_protected_content", "media_group_id", "author_signature", "link_preview_options",
            "reply_markup", "via_bot", "external_reply", "business_connection_id", "sender_boost_count",
            "is_topic_message", "has_media_spoiler", "show_caption_above_media", "effect_id"}


def _blocked(member: dict[str, Any]) -> list[Event]:
    """A person stopped (or restarted) the bot in their private chat."""
    chat, new = member.get("chat"), member.get("new_chat_member")
    if not isinstance(chat, dict) or chat.get("type") != "private" or not isinstance(new, dict):
        return []
    if not isinstance(chat.get("id"), int) or new.get("status") not in ("kicked", "member"):
        return []
    return [ChannelState(str(chat["id"]), blocked=new["status"] == "kicked")]


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _coordinates(location: Any) -> str:
    if not isinstance(location, dict):
        return ""
    lat, lon = location.get("latitude"), location.get("longitude")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return ""
    return f" {lat}, {lon} https://www.openstreetmap.org/?mlat={lat}&mlon={lon}"


def _with_links(text: str, entities: Any) -> str:
    """Hidden link targets (`text_link`: words that open a URL) written after their words.
    Entity offsets count UTF-16 code units."""
    links = [e for e in entities or [] if isinstance(e, dict) and e.get("type") == "text_link"
             and isinstance(e.get("url"), str) and isinstance(e.get("offset"), int) and isinstance(e.get("length"), int)]
    if not links:
        return text
    units = text.encode("utf-16-le")
    for e in sorted(links, key=lambda e: e["offset"] + e["length"], reverse=True):
        end = max(0, min(len(units), 2 * (e["offset"] + e["length"])))
        units = units[:end] + f" ({e['url']})".encode("utf-16-le") + units[end:]
    return units.decode("utf-16-le", "replace")


def _forwarded(m: dict[str, Any]) -> str:
    origin = m.get("forward_origin")
    who = ""
    if isinstance(origin, dict):
        user, chat = origin.get("sender_user"), origin.get("chat") or origin.get("sender_chat")
        if isinstance(user, dict):
            who = " ".join(_str(user.get(k)) for k in ("first_name", "last_name") if user.get(k))
        elif isinstance(chat, dict):
            who = _str(chat.get("title")) or _str(chat.get("username"))
        who = who or _str(origin.get("sender_user_name")) or "someone"
    elif isinstance(m.get("forward_from"), dict) or m.get("forward_sender_name") or m.get("forward_from_chat"):
        user, chat = m.get("forward_from") or {}, m.get("forward_from_chat") or {}
        who = (_str(user.get("first_name")) or _str(m.get("forward_sender_name")) or _str(chat.get("title"))
               or "someone")
    return f"[forwarded from {who}]" if who else ""


def _replying_to(m: dict[str, Any]) -> str:
    quote = m.get("quote")
    quoted = _str(quote.get("text")) if isinstance(quote, dict) else ""
    replied = m.get("reply_to_message")
    if not quoted and isinstance(replied, dict):
        quoted = _str(replied.get("text")) or _str(replied.get("caption"))
    if not quoted and not isinstance(replied, dict):
        return ""
    quoted = " ".join(quoted.split())
    return f"[in reply to: “{quoted[:200]}{'…' if len(quoted) > 200 else ''}”]" if quoted else "[in reply to a message]"


class _RawUpdates(GetUpdates):
    """getUpdates answered as plain JSON: one update aiogram's models refuse must not stop the
    whole batch (and polling with it); `parse` reads each one, leniently when it must."""

    __returning__ = list[dict[str, Any]]


def _sent_id(config: TelegramConfig, chat_id: int, sent: Message) -> str:
    return f"{_bot_id(config)}:{chat_id}:{sent.message_id}"


async def _download(url: str, policy: DownloadPolicy) -> bytes:
    """At most `policy.max_bytes` within `policy.timeout`, following no redirects."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=policy.timeout)) as http, \
            http.get(url, allow_redirects=False) as r:
        if r.status != 200:
            raise OSError(f"the file server answered {r.status}")
        data = bytearray()
        async for chunk in r.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > policy.max_bytes:
                raise DownloadRefused("too large")
        return bytes(data)


class TelegramAdapter:
    channel = "telegram"
    config_model = TelegramConfig
    secret_fields = ("token", "webhook_secret")
    downloads = DownloadPolicy()

    async def webhook(self, config: TelegramConfig, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        given = headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), config.webhook_secret.encode()):
            return WebhookAnswer(401, "wrong or missing secret token")
        try:
            update = json.loads(body)
        except ValueError:
            return WebhookAnswer(400, "not JSON")
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            return WebhookAnswer(400, "not a Telegram update")
        # Processed before answering: if storing fails, Telegram delivers the update again.
        return WebhookAnswer(200, "", [update])

    async def parse(self, config: TelegramConfig, update: Any) -> list[Event]:
        if not isinstance(update, dict):
            return []
        partial = None
        try:
            Update.model_validate(update)
        except ValidationError as exc:
            # Newer (or older) Bot API fields than aiogram's models know: the customer's words
            # and files are still read from the JSON, never dropped.
            partial = "; ".join(f"{'.'.join(str(p) for p in e['loc'][:4])}: {e['msg']}" for e in exc.errors()[:3])
            log.warning("a Telegram update did not match aiogram's model; reading it leniently: %s", partial)
        member = update.get("my_chat_member")
        if isinstance(member, dict):
            return _blocked(member)
        raw, edited = (update.get("message"), False) if "message" in update else (update.get("edited_message"), True)
        if not isinstance(raw, dict):
            return []
        chat, user = raw.get("chat"), raw.get("from")
        if not isinstance(chat, dict) or chat.get("type") != "private" or not isinstance(user, dict):
            return []
        if not isinstance(user.get("id"), int) or not isinstance(chat.get("id"), int):
            return []
        async with _bot(config) as bot:
            msg = await self._inbound(config, bot, raw, edited)
        if partial is not None:
            msg.partial, msg.raw = partial, update
            msg.text = (msg.text + "\n" if msg.text else "") + "[partly understood: the update as received is kept]"
        return [msg]

    async def _inbound(self, config: TelegramConfig, bot: Bot, m: dict[str, Any], edited: bool) -> InboundMessage:
        user = m["from"]
        base_id = f"{_bot_id(config)}:{m['chat']['id']}:{m.get('message_id')}"
        name = " ".join(str(p) for p in (user.get("first_name"), user.get("last_name")) if p) or user.get("username")
        plain = _str(m.get("text")) or _str(m.get("caption"))
        text = _with_links(plain, m.get("entities") or m.get("caption_entities"))
        msg = InboundMessage(external_id=base_id, sender_id=str(user["id"]), text=text, sender_name=name)
        if edited:
            msg.external_id = f"{base_id}:edit:{m.get('edit_date') or 0}"
            msg.edits = base_id
        context = [line for line in (_forwarded(m), _replying_to(m)) if line]
        if context:
            msg.text = "\n".join([*context, msg.text]) if msg.text else "\n".join(context)
        try:
            await self._content(bot, msg, m)
        except (KeyError, TypeError, ValueError, AttributeError):
            # Shaped unlike the documentation: keep the words, say what is missing.
            log.warning("could not read the content of a Telegram message", exc_info=True)
            msg.text = (msg.text + "\n" if msg.text else "") + "[an attachment that could not be read]"
        if plain == "/start" or plain.startswith("/start "):
            token = plain[len("/start") :].strip()
            if token:
                msg.link_token, msg.text = token, ""
        return msg

    async def _content(self, bot: Bot, msg: InboundMessage, m: dict[str, Any]) -> None:
        """Whatever the message carries besides its text: files where we can keep them,
        otherwise what they say (coordinates, a contact, a poll) as text."""
        def note(line: str) -> None:
            msg.text = (msg.text + "\n" if msg.text else "") + line

        photo = m.get("photo")
        if isinstance(photo, list) and photo:
            biggest = max(photo, key=lambda p: _int(p.get("width")) * _int(p.get("height")))
            await self._fetch(bot, msg, biggest["file_id"], biggest.get("file_size"), "photo.jpg", "image/jpeg")
            return
        for key, default_name, default_type in FILES:
            f = m.get(key)
            if isinstance(f, dict) and isinstance(f.get("file_id"), str):
                await self._fetch(bot, msg, f["file_id"], f.get("file_size"), _str(f.get("file_name")) or default_name,
                                  _str(f.get("mime_type")) or default_type)
                return
        sticker = m.get("sticker")
        if isinstance(sticker, dict):
            emoji = _str(sticker.get("emoji"))
            if sticker.get("is_animated") or sticker.get("is_video"):
                msg.text = f"[sticker {emoji}]".replace(" ]", "]")
            else:
                await self._fetch(bot, msg, sticker["file_id"], sticker.get("file_size"), "sticker.webp", "image/webp")
                msg.text = msg.text or emoji
            return
        contact = m.get("contact")
        if isinstance(contact, dict):
            phone = _str(contact.get("phone_number"))
            who = " ".join(_str(contact.get(k)) for k in ("first_name", "last_name") if contact.get(k))
            note(f"[contact: {who}, {phone}]" if who else f"[contact: {phone}]")
            # Only their own number (the "share my phone" button) says who they are.
            if phone and contact.get("user_id") == m["from"]["id"]:
                msg.shared_phone = phone
            return
        venue, location = m.get("venue"), m.get("location")
        if isinstance(venue, dict):
            where = _coordinates(venue.get("location"))
            note(f"[venue: {_str(venue.get('title'))}, {_str(venue.get('address'))}{where}]")
            return
        if isinstance(location, dict):
            note(f"[location:{_coordinates(location)}]")
            return
        poll = m.get("poll")
        if isinstance(poll, dict):
            options = " / ".join(_str(o.get("text")) for o in poll.get("options") or [] if isinstance(o, dict))
            note(f"[poll: {_str(poll.get('question'))}{' — ' + options if options else ''}]")
            return
        if not msg.text:
            kind = next((k for k in m if k not in ENVELOPE), "unknown")
            note(f"[{kind} message: not supported here]")

    async def _fetch(self, bot: Bot, msg: InboundMessage, file_id: str, size: int | None, name: str, ctype: str) -> None:
        policy = self.downloads
        if size is not None and size > policy.max_bytes:
            msg.text = (msg.text + "\n" if msg.text else "") + f"[{name}: too large to download]"
            return
        try:
            file = await bot.get_file(file_id)
            if not file.file_path:
                raise DownloadRefused("Telegram gave no file path")
            # Built from the bot's own API server, never from the payload; still checked, as
            # that server is a setting.
            url = bot.session.api.file_url(bot.token, file.file_path)
            await policy.check(url)
            data = await _download(url, policy)
        except DownloadRefused as exc:
            log.warning("not downloading a Telegram file: %s", exc)
            msg.text = (msg.text + "\n" if msg.text else "") + f"[{name}: not downloaded: {exc}]"
            return
        except (TimeoutError, TelegramAPIError, aiohttp.ClientError, OSError):
            # The message matters more than the file: keep it, and say what is missing.
            log.warning("could not download a Telegram file", exc_info=True)
            msg.text = (msg.text + "\n" if msg.text else "") + f"[{name}: could not be downloaded]"
            return
        msg.attachments.append(InboundAttachment(name=name, content_type=ctype, data=data))

    async def send(self, config: TelegramConfig, message: OutboundMessage) -> Sent:
        chat_id = int(message.recipient)
        caption = message.text if len(message.text) <= MAX_CAPTION else ""
        async with _bot(config) as bot:

            def text_part(text: str) -> Callable[[], Awaitable[str]]:
                async def send() -> str:
                    return _sent_id(config, chat_id, await bot.send_message(chat_id, text))
                return send

            def file_part(a: OutboundAttachment, caption: str | None) -> Callable[[], Awaitable[str]]:
                async def send() -> str:
                    doc = BufferedInputFile(a.data, a.name)
                    return _sent_id(config, chat_id, await bot.send_document(chat_id, doc, caption=caption))
                return send

            parts: list[Callable[[], Awaitable[str]]] = []
            if message.text and not (message.attachments and caption):
                parts += [text_part(t) for t in split_text(message.text, MAX_TEXT)]
            parts += [file_part(a, caption if i == 0 and caption else None) for i, a in enumerate(message.attachments)]
            try:
                return await message.deliver_parts(parts)
            except TelegramRetryAfter as exc:
                raise RetryLater(exc.retry_after, f"Telegram asked to wait {exc.retry_after} s") from exc
            except (TelegramForbiddenError, TelegramBadRequest, TelegramNotFound, TelegramUnauthorizedError) as exc:
                raise PermanentFailure(f"Telegram refused: {exc.message}") from exc
            except TelegramServerError as exc:
                raise RuntimeError(f"Telegram answered with a server error: {exc.message}") from exc

    async def listen(self, config: TelegramConfig, cursor: str | None, handle: Handle) -> None:
        if config.mode != "polling":
            return
        offset = int(cursor) if cursor and cursor.lstrip("-").isdigit() else None
        async with _bot(config) as bot:
            await bot.delete_webhook(drop_pending_updates=False)
            failures = 0
            while True:
                try:
                    call = _RawUpdates(offset=offset, timeout=config.poll_timeout, allowed_updates=UPDATES)
                    updates = cast(list[Any], await bot(call))
                    failures = 0
                    handle.reached()
                except TelegramRetryAfter as exc:
                    await asyncio.sleep(exc.retry_after)
                    continue
                except Exception as exc:
                    failures += 1
                    handle.failed(f"getUpdates failed: {getattr(exc, 'message', None) or exc or type(exc).__name__}")
                    log.warning("Telegram polling failed (%d in a row)", failures, exc_info=True)
                    await asyncio.sleep(poll_retry_delay(failures))
                    continue
                updates = [u for u in updates if isinstance(u, dict) and isinstance(u.get("update_id"), int)]
                if updates:
                    after = updates[-1]["update_id"] + 1
                    await handle(updates, str(after))  # raises when storing failed: fetched again
                    offset = after

    async def check(self, config: TelegramConfig) -> dict[str, Any]:
        async with _bot(config) as bot:
            return await check_bot(bot, urlsplit(config.api_base).netloc if config.api_base else "api.telegram.org")

    async def register(self, config: TelegramConfig, webhook_url: str) -> None:
        async with _bot(config) as bot:
            if config.mode == "webhook":
                await bot.set_webhook(webhook_url, secret_token=config.webhook_secret, allowed_updates=UPDATES)

    async def profile_name(self, config: TelegramConfig, sender_id: str) -> str | None:
        return None  # every Telegram message carries its sender's name

    def link_url(self, config: TelegramConfig, token: str) -> str | None:
        return f"https://t.me/{config.bot_username}?start={token}" if config.bot_username else None
