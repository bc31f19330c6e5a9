"""Telegram bots through aiogram: webhook or long polling in, Bot API calls out."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

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
from aiogram.types import BufferedInputFile, Message, Update
from pydantic import Field, ValidationError

from .base import (
    ChannelConfig,
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
    split_text,
)

log = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
UPDATES = ["message", "edited_message"]
MAX_TEXT = 4096
MAX_CAPTION = 1024


class TelegramConfig(ChannelConfig):
    token: str = Field(min_length=10, max_length=200, pattern=r"^\d+:[A-Za-z0-9_-]+$")
    bot_username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_]+$")
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
        try:
            parsed = Update.model_validate(update)
        except ValidationError:
            log.warning("ignoring a malformed Telegram update")
            return []
        message, edited = (parsed.message, False) if parsed.message else (parsed.edited_message, True)
        if message is None or message.chat.type != "private" or message.from_user is None:
            return []
        async with _bot(config) as bot:
            return [await self._inbound(config, bot, message, edited)]

    async def _inbound(self, config: TelegramConfig, bot: Bot, m: Message, edited: bool) -> InboundMessage:
        assert m.from_user is not None
        base_id = f"{_bot_id(config)}:{m.chat.id}:{m.message_id}"
        user = m.from_user
        name = " ".join(p for p in (user.first_name, user.last_name) if p) or user.username
        text = m.text or m.caption or ""
        msg = InboundMessage(external_id=base_id, sender_id=str(user.id), text=text, sender_name=name)
        if edited:
            msg.external_id = f"{base_id}:edit:{m.edit_date or 0}"
            msg.edits = base_id
        if m.text and (m.text == "/start" or m.text.startswith("/start ")):
            token = m.text[len("/start") :].strip()
            if token:
                msg.link_token, msg.text = token, ""
        if m.photo:
            biggest = max(m.photo, key=lambda p: p.width * p.height)
            await self._fetch(bot, msg, biggest.file_id, biggest.file_size, "photo.jpg", "image/jpeg")
        elif m.document:
            d = m.document
            await self._fetch(bot, msg, d.file_id, d.file_size, d.file_name or "document",
                              d.mime_type or "application/octet-stream")
        elif m.voice:
            await self._fetch(bot, msg, m.voice.file_id, m.voice.file_size, "voice.ogg", m.voice.mime_type or "audio/ogg")
        elif m.sticker:
            s = m.sticker
            if s.is_animated or s.is_video:
                msg.text = f"[sticker {s.emoji or ''}]".replace(" ]", "]")
            else:
                await self._fetch(bot, msg, s.file_id, s.file_size, "sticker.webp", "image/webp")
                msg.text = msg.text or (s.emoji or "")
        elif not text:
            kind = getattr(m.content_type, "value", m.content_type)
            msg.text = f"[{kind} message: not supported here]"
        return msg

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
                    updates = await bot.get_updates(offset=offset, timeout=config.poll_timeout, allowed_updates=UPDATES)
                    failures = 0
                except TelegramRetryAfter as exc:
                    await asyncio.sleep(exc.retry_after)
                    continue
                except Exception:
                    failures += 1
                    log.warning("Telegram polling failed (%d in a row)", failures, exc_info=True)
                    await asyncio.sleep(min(60, 2**failures))
                    continue
                if updates:
                    after = updates[-1].update_id + 1
                    raw = [u.model_dump(mode="json", exclude_none=True, by_alias=True) for u in updates]
                    await handle(raw, str(after))  # raises when storing failed: fetched again
                    offset = after

    async def register(self, config: TelegramConfig, webhook_url: str) -> None:
        async with _bot(config) as bot:
            if config.mode == "webhook":
                await bot.set_webhook(webhook_url, secret_token=config.webhook_secret, allowed_updates=UPDATES)

    async def profile_name(self, config: TelegramConfig, sender_id: str) -> str | None:
        return None  # every Telegram message carries its sender's name

    def link_url(self, config: TelegramConfig, token: str) -> str | None:
        return f"https://t.me/{config.bot_username}?start={token}"
