"""VK community messages through vk-api: Callback API or Bots Long Poll in, messages.send out."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import mimetypes
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal
from urllib.parse import urljoin

import requests
import vk_api
from pydantic import Field, ValidationInfo, field_validator

from .base import (
    ChannelConfig,
    ChannelState,
    DownloadPolicy,
    DownloadRefused,
    Event,
    ForeignReply,
    Handle,
    InboundAttachment,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    ReadReceipt,
    RetryLater,
    Sent,
    WebhookAnswer,
    poll_retry_delay,
    split_text,
)
from .vk_check import check_community
from .vk_history import WatchedLongPoll, missed_events, read_cursor
from .vk_history import cursor as history_cursor

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3
MAX_TEXT = 4096
# VK error codes: too many requests, flood control; cannot write to this user, blacklisted.
SLOW_DOWN = {6, 9}
REFUSED = {7, 900, 901, 902, 917}
PEER_CHATS_START = 2_000_000_000  # peer ids from here on are group chats


def _random_id(message_id: int, part: int) -> int:
    """VK's idempotency key (int32) for one part of one of our messages."""
    if part == 0:
        return message_id % 2**31
    digest = hashlib.sha256(f"{message_id}:{part}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2**31


class VkConfig(ChannelConfig):
    token: str = Field(min_length=10, max_length=500)
    group_id: int = Field(ge=1)
    mode: Literal["callback", "longpoll"] = "longpoll"
    # Callback API: the string VK expects back when confirming the address, and its secret key.
    confirmation: str = Field(default="", max_length=100)
    # Required in callback mode: without it anyone who knows the public group id could post
    # messages as any VK user.
    secret: str = Field(default="", max_length=100, validate_default=True)
    # For the vk.me link; "club<group_id>" when empty.
    screen_name: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9_.]*$")
    api_version: str = Field(default="5.199", pattern=r"^\d+\.\d+$")
    wait: int = Field(default=25, ge=1, le=90)


    @field_validator("secret")
    @classmethod
    def _secret_for_callbacks(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("mode") == "callback" and not value.strip():
            raise ValueError("callback mode needs the secret key set in the community's Callback API settings")
        return value


SessionHook = Callable[[requests.Session], None]


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _describe(kind: str, body: Any) -> str:
    """An attachment we keep as text: the link, title and words it carries."""
    if not isinstance(body, dict):
        return f"[{kind}: not supported here]"
    owner, ident = body.get("owner_id") or body.get("from_id"), body.get("id")
    if kind == "link":
        title = _s(body.get("title")) or _s(body.get("caption"))
        return f"[link: {title + ' ' if title else ''}{_s(body.get('url'))}]"
    if kind == "wall":
        text = " ".join(_s(body.get("text")).split())
        return f"[wall post https://vk.com/wall{owner}_{ident}{': ' + text[:1000] if text else ''}]"
    if kind == "wall_reply":
        return f"[comment: {_s(body.get('text'))[:1000]}]"
    if kind == "market":
        price: dict[str, Any] = body["price"] if isinstance(body.get("price"), dict) else {}
        bits = [b for b in (_s(body.get("title")), _s(price.get("text"))) if b]
        return f"[product: {', '.join(bits)} https://vk.com/market{owner}?w=product{owner}_{ident}]"
    if kind == "video":
        return f"[video: {_s(body.get('title'))} https://vk.com/video{owner}_{ident}]"
    if kind == "audio":
        return f"[audio: {_s(body.get('artist'))} — {_s(body.get('title'))}]"
    if kind == "poll":
        answers = " / ".join(_s(a.get("text")) for a in body.get("answers") or [] if isinstance(a, dict))
        return f"[poll: {_s(body.get('question'))}{' — ' + answers if answers else ''}]"
    return f"[{kind}: not supported here]"


def _context(m: dict[str, Any]) -> list[str]:
    """What the message answers or forwards, as lines before its own text."""
    lines = []
    for fwd in m.get("fwd_messages") or []:
        if isinstance(fwd, dict):
            text = " ".join(_s(fwd.get("text")).split())
            lines.append(f"[forwarded: “{text[:200]}{'…' if len(text) > 200 else ''}”]" if text else "[forwarded message]")
    reply = m.get("reply_message")
    if isinstance(reply, dict):
        text = " ".join(_s(reply.get("text")).split())
        lines.append(f"[in reply to: “{text[:200]}{'…' if len(text) > 200 else ''}”]" if text else "[in reply to a message]")
    return lines


class VkAdapter:
    channel = "vk"
    config_model = VkConfig
    secret_fields = ("token", "secret")
    downloads = DownloadPolicy()

    def __init__(self, session_hook: SessionHook | None = None) -> None:
        # Lets a deployment (or a test) adjust the requests sessions: proxies, transports.
        self._hook = session_hook

    def _api(self, config: VkConfig) -> vk_api.VkApi:
        vk = vk_api.VkApi(token=config.token, api_version=config.api_version)
        vk.RPS_DELAY = 1 / 20  # community tokens may make 20 calls a second
        if self._hook:
            self._hook(vk.http)
        return vk

    async def webhook(self, config: VkConfig, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        try:
            event = json.loads(body)
        except ValueError:
            return WebhookAnswer(400, "not JSON")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return WebhookAnswer(400, "not a VK event")
        if event.get("group_id") != config.group_id:
            return WebhookAnswer(403, "wrong group")
        if event["type"] == "confirmation":
            return WebhookAnswer(200, config.confirmation)
        if not config.secret or not hmac.compare_digest(str(event.get("secret", "")).encode(), config.secret.encode()):
            return WebhookAnswer(403, "wrong secret")
        return WebhookAnswer(200, "ok", [event], process_after_answer=True)

    async def parse(self, config: VkConfig, update: Any) -> list[Event]:
        kind = update.get("type") if isinstance(update, dict) else None
        obj = update.get("object") if kind else None
        if not isinstance(obj, dict):
            return []
        if kind == "message_read":
            return [ReadReceipt(str(obj.get("from_id")), f"{config.group_id}:{obj.get('read_message_id')}")]
        if kind in ("message_deny", "message_allow") and isinstance(obj.get("user_id"), int):
            return [ChannelState(str(obj["user_id"]), blocked=kind == "message_deny")]
        if kind == "message_reply":
            return self._reply(config, obj)
        if kind not in ("message_new", "message_edit"):
            return []
        m = obj.get("message", obj) if kind == "message_new" else obj
        if not isinstance(m, dict):
            return []
        from_id, peer_id = m.get("from_id", 0), m.get("peer_id", 0)
        if not isinstance(from_id, int) or from_id <= 0 or peer_id != from_id or peer_id >= PEER_CHATS_START:
            return []  # communities, group chats and our own messages are not customers
        base_id = f"{config.group_id}:{m.get('id') or m.get('conversation_message_id')}"
        msg = InboundMessage(external_id=base_id, sender_id=str(from_id), text=str(m.get("text") or ""))
        if kind == "message_edit":
            msg.external_id, msg.edits = f"{base_id}:edit:{m.get('update_time') or m.get('date')}", base_id
        if m.get("ref"):
            msg.link_token = str(m["ref"])
        context = _context(m)
        if context:
            msg.text = "\n".join([*context, msg.text]) if msg.text else "\n".join(context)
        for a in m.get("attachments") or []:
            if isinstance(a, dict):
                try:
                    await self._attachment(config, msg, a)
                except (KeyError, TypeError, ValueError, AttributeError):
                    # A payload shaped unlike the documentation: keep the message, name the gap.
                    msg.text = (msg.text + "\n" if msg.text else "") + f"[{a.get('type')}: could not be read]"
        return [msg]

    async def _attachment(self, config: VkConfig, msg: InboundMessage, a: dict[str, Any]) -> None:
        kind = a.get("type")
        body = a.get(kind) or {} if isinstance(kind, str) else {}
        if kind == "photo":
            sizes = body.get("sizes") or []
            if sizes:
                best = max(sizes, key=lambda s: s.get("width", 0) * s.get("height", 0))
                await self._fetch(config, msg, best["url"], "photo.jpg", "image/jpeg")
        elif kind == "doc":
            ext = body.get("ext", "")
            title = body.get("title") or "document"
            name = title if not ext or title.endswith("." + ext) else f"{title}.{ext}"
            ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            await self._fetch(config, msg, body["url"], name, ctype, body.get("size"))
        elif kind == "sticker":
            images = body.get("images") or []
            if images:
                best = max(images, key=lambda s: s.get("width", 0))
                await self._fetch(config, msg, best["url"], "sticker.png", "image/png")
            else:
                msg.text = msg.text or "[sticker]"
        elif kind == "audio_message":
            await self._fetch(config, msg, body.get("link_ogg") or body["link_mp3"], "voice.ogg", "audio/ogg")
        elif kind == "graffiti" and body.get("url"):
            await self._fetch(config, msg, body["url"], "graffiti.png", "image/png")
        else:
            msg.text = (msg.text + "\n" if msg.text else "") + _describe(str(kind), body)

    def _reply(self, config: VkConfig, m: dict[str, Any]) -> list[Event]:
        """A message the community sent: one of ours coming back, or an admin answering in VK."""
        peer_id = m.get("peer_id", 0)
        if not isinstance(peer_id, int) or peer_id <= 0 or peer_id >= PEER_CHATS_START or not m.get("id"):
            return []
        parts = [str(m.get("text") or "")]
        parts += [_describe(str(a.get("type")), a.get(str(a.get("type"))) or {})
                  for a in m.get("attachments") or [] if isinstance(a, dict)]
        key = m.get("random_id")
        return [ForeignReply(external_id=f"{config.group_id}:{m['id']}", recipient_id=str(peer_id),
                             text="\n".join(p for p in parts if p), author_name="VK community",
                             key=key if isinstance(key, int) and key else None)]

    async def _fetch(self, config: VkConfig, msg: InboundMessage, url: str, name: str, ctype: str,
                     size: int | None = None) -> None:
        policy = self.downloads
        if size is not None and size > policy.max_bytes:
            msg.text = (msg.text + "\n" if msg.text else "") + f"[{name}: too large to download]"
            return
        deadline = time.monotonic() + policy.timeout
        try:
            data: bytes | None = None
            for _ in range(MAX_REDIRECTS + 1):
                # Every hop is checked: a VK document URL redirects to its CDN, and a payload
                # could name (or redirect to) an internal address.
                await policy.check(url)
                url, data = await asyncio.to_thread(self._get_once, config, url, policy, deadline)
                if data is not None:
                    break
            if data is None:
                raise DownloadRefused("too many redirects")
        except DownloadRefused as exc:
            log.warning("not downloading a VK attachment: %s", exc)
            msg.text = (msg.text + "\n" if msg.text else "") + f"[{name}: not downloaded: {exc}]"
            return
        except (requests.RequestException, OSError):
            # The message matters more than the file: keep it, and say what is missing.
            log.warning("could not download a VK attachment", exc_info=True)
            msg.text = (msg.text + "\n" if msg.text else "") + f"[{name}: could not be downloaded]"
            return
        msg.attachments.append(InboundAttachment(name=name, content_type=ctype, data=data))

    def _get_once(self, config: VkConfig, url: str, policy: DownloadPolicy,
                  deadline: float) -> tuple[str, bytes | None]:
        """One request: (the next URL, None) for a redirect, else (url, the bytes)."""
        session = self._api(config).http
        remaining = max(0.1, deadline - time.monotonic())
        with session.get(url, timeout=remaining, stream=True, allow_redirects=False) as r:
            if r.is_redirect:
                return urljoin(url, r.headers.get("location", "")), None
            r.raise_for_status()
            data = bytearray()
            for chunk in r.iter_content(64 * 1024):
                data += chunk
                if len(data) > policy.max_bytes:
                    raise DownloadRefused("too large")
                if time.monotonic() > deadline:
                    raise DownloadRefused("took too long")
        return url, bytes(data)

    async def send(self, config: VkConfig, message: OutboundMessage) -> Sent:
        peer_id = int(message.recipient)
        texts = split_text(message.text, MAX_TEXT)

        def part(i: int, text: str) -> Callable[[], Awaitable[str]]:
            last = i == len(texts) - 1

            def call() -> str:
                vk = self._api(config)
                files = [self._upload(vk, peer_id, a.name, a.data) for a in message.attachments] if last else []
                result = vk.method("messages.send", {
                    "peer_id": peer_id, "message": text,
                    # VK drops a second send with the same random_id: a retry never doubles a part.
                    "random_id": _random_id(message.message_id, i),
                    **({"attachment": ",".join(files)} if files else {}),
                })
                return f"{config.group_id}:{int(result)}"

            async def send() -> str:
                return await asyncio.to_thread(call)
            return send

        try:
            return await message.deliver_parts([part(i, t) for i, t in enumerate(texts)])
        except vk_api.ApiError as exc:
            if exc.code in SLOW_DOWN:
                raise RetryLater(1.0, f"VK asked to slow down: {exc.error.get('error_msg')}") from exc
            if exc.code in REFUSED:
                raise PermanentFailure(f"VK refused: {exc.error.get('error_msg')}") from exc
            raise RuntimeError(f"VK error {exc.code}: {exc.error.get('error_msg')}") from exc

    def _upload(self, vk: vk_api.VkApi, peer_id: int, name: str, data: bytes) -> str:
        server = vk.method("docs.getMessagesUploadServer", {"type": "doc", "peer_id": peer_id})
        r = vk.http.post(server["upload_url"], files={"file": (name, data)}, timeout=60)
        r.raise_for_status()
        saved = vk.method("docs.save", {"file": r.json()["file"], "title": name})
        doc = saved["doc"]
        return f"doc{doc['owner_id']}_{doc['id']}"

    async def listen(self, config: VkConfig, cursor: str | None, handle: Handle) -> None:
        if config.mode != "longpoll":
            return

        def connect() -> WatchedLongPoll:
            poll = WatchedLongPoll(self._api(config), config.group_id, wait=config.wait)
            if self._hook:
                self._hook(poll.session)
            if resume_from:
                poll.ts = resume_from  # pick up where we stopped: VK keeps recent events
            return poll

        def check(poll: WatchedLongPoll) -> list[dict[str, Any]]:
            events = [e.raw for e in poll.check()]
            if poll.lost:  # VK lost what came since we last heard it: read it from the history
                events = missed_events(self._api(config), config.group_id, heard_at or time.time())
                poll.lost = False
            return events

        # After a lost connection, ask again from the last position stored, not from where VK
        # is now: what arrived during the outage would be skipped.
        resume_from, heard_at = read_cursor(cursor)
        failures = 0
        poll: Any = None
        while True:
            try:
                if poll is None:
                    poll = await asyncio.to_thread(connect)
                before, asked_at = poll.ts, time.time()
                events = await asyncio.to_thread(check, poll)
                failures = 0
                handle.reached()
            except Exception as exc:
                failures += 1
                poll = None
                handle.failed(f"Bots Long Poll failed: {exc or type(exc).__name__}")
                log.warning("VK long poll failed (%d in a row)", failures, exc_info=True)
                await asyncio.sleep(poll_retry_delay(failures))
                continue
            if events or poll.ts != before:
                try:
                    await handle(events, history_cursor(poll.ts, asked_at))
                except BaseException:
                    poll.ts = before  # not stored: ask for the same events again
                    raise
            resume_from, heard_at = str(poll.ts), asked_at

    async def check(self, config: VkConfig) -> dict[str, Any]:
        found = await check_community(self._api(config), config.group_id, config.mode == "longpoll")
        return {} if config.screen_name else found

    async def register(self, config: VkConfig, webhook_url: str) -> None:
        return None  # the Callback API address is entered in the community's settings

    async def profile_name(self, config: VkConfig, sender_id: str) -> str | None:
        def call() -> Any:
            return self._api(config).method("users.get", {"user_ids": sender_id})
        users = await asyncio.to_thread(call)
        if not users:
            return None
        u = users[0]
        return " ".join(p for p in (u.get("first_name"), u.get("last_name")) if p) or None

    def link_url(self, config: VkConfig, token: str) -> str | None:
        return f"https://vk.me/{config.screen_name or f'club{config.group_id}'}?ref={token}"
