"""What every channel adapter speaks: normalised inbound and outbound messages, the
adapter protocol and the registry. Adapters translate; they never touch the database."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict


class ChannelConfig(BaseModel):
    """Base of each adapter's settings model: unknown keys are mistakes, not extras."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class InboundAttachment:
    name: str
    content_type: str
    data: bytes


@dataclass
class InboundMessage:
    """One message a person sent us on some channel, in our terms."""

    # Unique within the channel: a redelivered update carries the same id and is stored once.
    external_id: str
    # Who wrote: the identity value (Telegram user id, VK user id, lower-cased email address).
    sender_id: str
    text: str
    sender_name: str | None = None
    attachments: list[InboundAttachment] = field(default_factory=list)
    # The widget's "continue in ..." token (`/start <token>`, `ref=<token>`).
    link_token: str | None = None
    # A correction of an earlier message: `edits` is that message's external id.
    edits: str | None = None
    # Email threading: this message's Message-ID, the ids it answers, the reply+ token.
    thread_ids: list[str] = field(default_factory=list)
    reply_token: str | None = None
    subject: str | None = None
    # The full text before quoted history and signatures were cut.
    original: str | None = None
    # The signature cut from `text` ("-- " and below, "Sent from my iPhone"), shown apart.
    signature: str | None = None
    # Set for news that is not a customer message (bounces, auto-replies): never stored.
    ignored: str | None = None
    # The person shared their own phone number (Telegram's "share my phone" button).
    shared_phone: str | None = None
    # Read leniently, because the service sent something our library's model refused: what
    # was not understood, and the update as it arrived, kept for the operator.
    partial: str | None = None
    raw: dict[str, Any] | None = None


@dataclass
class ReadReceipt:
    """The person read our messages up to (and including) `external_id` in their chat."""

    sender_id: str
    up_to_external_id: str


@dataclass
class ForeignReply:
    """Someone on the business side answered the person in the service itself (a community
    admin writing in VK's own interface): shown in the thread as ours, never sent again."""

    external_id: str
    recipient_id: str  # the person it went to
    text: str
    author_name: str
    # The idempotency key the sender gave (VK's random_id): ours when it is one of our ids.
    key: int | None = None


@dataclass
class ChannelState:
    """The person blocked us (or unblocked us) on the channel: replies there cannot arrive."""

    sender_id: str
    blocked: bool


@dataclass
class OutboundAttachment:
    name: str
    content_type: str
    data: bytes


@dataclass
class OutboundMessage:
    # Our message id: channels that accept an idempotency key get one derived from it.
    message_id: int
    recipient: str
    text: str
    attachments: list[OutboundAttachment] = field(default_factory=list)
    author_name: str | None = None
    # Email: the thread this reply belongs to.
    subject: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    reply_token: str | None = None
    # Automatic (proactive) messages: a new thread under `subject` (no "Re:"), an HTML part
    # beside the text, and headers of their own (List-Unsubscribe).
    new_thread: bool = False
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # A reply that leaves in several parts (long text, text then files): the channel ids of
    # the parts an earlier try already delivered, in order. The adapter sends only the rest,
    # and reports each part as it leaves (`part_sent` records it before the next one goes),
    # so a retry never sends a part twice.
    sent_parts: list[str] = field(default_factory=list)
    part_sent: Callable[[str], Awaitable[None]] | None = None

    async def deliver_parts(self, parts: list[Callable[[], Awaitable[str]]]) -> Sent:
        """Send the parts not sent yet, in order; each callable sends one and returns its id."""
        if not parts:
            raise PermanentFailure("nothing to send: no text and no files")
        ids = list(self.sent_parts[: len(parts)])
        for part in parts[len(ids):]:
            external_id = await part()
            ids.append(external_id)
            if self.part_sent is not None:
                await self.part_sent(external_id)
        return Sent(ids[-1])


def split_text(text: str, size: int) -> list[str]:
    """Cut a long text into parts the service accepts, at a line break or a space near the
    limit when there is one, so words are not split across two messages."""
    parts: list[str] = []
    while len(text) > size:
        cut = max(text.rfind("\n", size // 2, size), text.rfind(" ", size // 2, size))
        cut = cut + 1 if cut > 0 else size
        parts.append(text[:cut])
        text = text[cut:]
    if text or not parts:
        parts.append(text)
    return parts


@dataclass
class Sent:
    """The channel's id of what we sent, and thread ids to remember (email's Message-ID)."""

    external_id: str


class RetryLater(Exception):  # noqa: N818 - reads as what the caller should do
    """The service asked us to slow down (HTTP 429 and friends): retry after `seconds`."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason


class PermanentFailure(Exception):  # noqa: N818
    """Retrying cannot help (blocked by the user, unknown chat, bad address)."""


class ConfigError(Exception):
    pass


class CredentialsRefused(Exception):  # noqa: N818 - reads as what happened
    """The service (or the mail server) would not take these settings: a wrong token or
    password, a host that cannot be reached. `code` says which (`token_refused`,
    `smtp_unreachable`, ...), the message says it in words an admin can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DownloadRefused(Exception):  # noqa: N818
    """A file URL we will not fetch (a host that is not the service's, a private address)."""


@dataclass(frozen=True)
class DownloadPolicy:
    """Where channel files may be downloaded from, how big and how slow they may be.

    Payloads name file URLs, and whoever can post a payload could name an internal address:
    only the services' own file hosts are fetched (`*.example.com` matches subdomains), and
    only at public addresses, unless a host is named exactly (a deployment's own Bot API
    server, the local fakes in tests). The default allows nothing."""

    hosts: tuple[str, ...] = ()
    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 60.0

    def _matches(self, host: str) -> tuple[bool, bool]:
        """(allowed, named exactly)."""
        for pattern in self.hosts:
            if pattern == host:
                return True, True
            if pattern.startswith("*.") and host.endswith(pattern[1:]):
                return True, False
        return False, False

    async def check(self, url: str) -> None:
        """Raises DownloadRefused unless `url` may be fetched now."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.scheme not in ("http", "https") or not host:
            raise DownloadRefused("not a web address")
        allowed, exact = self._matches(host)
        if not allowed:
            raise DownloadRefused(f"{host} is not one of the service's file hosts")
        if exact:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443)
        except OSError as exc:
            raise DownloadRefused(f"{host} could not be resolved") from exc
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if not address.is_global:
                raise DownloadRefused(f"{host} points at a private address")


@dataclass
class WebhookAnswer:
    """What to answer the service at once, and the updates to process (now or after)."""

    status: int
    body: str
    updates: list[Any] = field(default_factory=list)
    # VK wants its "ok" within seconds and retries otherwise: process after answering.
    process_after_answer: bool = False


Event = InboundMessage | ReadReceipt | ForeignReply | ChannelState


# A polling loop that cannot reach its service waits 2, 4, 8… seconds between tries, never
# more than this: after an outage of any length it is back within a minute. (Tests shorten it
# to play a long outage in a moment.)
POLL_RETRY_CAP = 60.0


def poll_retry_delay(failures: int) -> float:
    return min(POLL_RETRY_CAP, 2.0 ** min(failures, 16))


class Handle(Protocol):
    """What a polling loop reports to: the updates it fetched, and how reaching the service went."""

    async def __call__(self, updates: list[Any], cursor: str | None) -> None:
        """Store `updates`, then remember `cursor`; raises when storing failed."""
        ...

    def reached(self) -> None:
        """A round trip to the service worked (the instance is connected)."""
        ...

    def failed(self, reason: str) -> None:
        """The service could not be reached or refused us; the loop retries on its own."""
        ...


class ChannelAdapter(Protocol):
    """One channel. `config` is the instance's validated settings (secrets included)."""

    # Where files named in payloads may be fetched from (set by the registry).
    downloads: DownloadPolicy

    @property
    def channel(self) -> str: ...

    @property
    def config_model(self) -> type[ChannelConfig]: ...

    @property
    def secret_fields(self) -> tuple[str, ...]:
        """Config fields that are secrets: stored, never returned in full."""
        ...

    async def webhook(self, config: Any, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        """Check and answer one webhook call; returns the updates it carried."""
        ...

    async def parse(self, config: Any, update: Any) -> list[Event]:
        """One update (webhook or polled) -> what it means for us (downloads attachments)."""
        ...

    async def send(self, config: Any, message: OutboundMessage) -> Sent:
        ...

    async def listen(self, config: Any, cursor: str | None, handle: Handle) -> None:
        """Poll forever (until cancelled), calling `handle(updates, new_cursor)`; `handle`
        returns after the updates are stored, so the cursor only moves past stored news.
        Adapters without a polling mode return at once."""
        ...

    async def check(self, config: Any) -> dict[str, Any]:
        """Ask the service whether these credentials work (Telegram getMe, VK groups.getById,
        SMTP and IMAP login); raises CredentialsRefused saying what is wrong. Returns settings
        learned on the way (the bot's username) to store with the rest."""
        ...

    async def register(self, config: Any, webhook_url: str) -> None:
        """Tell the service where our webhook is (Telegram setWebhook); a no-op elsewhere."""
        ...

    async def profile_name(self, config: Any, sender_id: str) -> str | None:
        """The person's display name, for channels whose messages do not carry it."""
        ...

    def link_url(self, config: Any, token: str) -> str | None:
        """The "continue here" deep link carrying `token`, or None for channels without one."""
        ...


class AdapterRegistry:
    """Channel name -> adapter. Factories are called on first use, so a server without,
    say, Telegram bots never imports aiogram (and starts faster)."""

    def __init__(self, adapters: list[ChannelAdapter] | None = None,
                 factories: dict[str, Callable[[], ChannelAdapter]] | None = None) -> None:
        self._by_channel = {a.channel: a for a in adapters or []}
        self._factories = dict(factories or {})
        self.downloads = DownloadPolicy()

    def use_downloads(self, policy: DownloadPolicy) -> None:
        """The deployment's download rules, handed to every adapter (made now or later)."""
        self.downloads = policy
        for adapter in self._by_channel.values():
            adapter.downloads = policy

    def get(self, channel: str) -> ChannelAdapter | None:
        adapter = self._by_channel.get(channel)
        if adapter is None and channel in self._factories:
            adapter = self._by_channel[channel] = self._factories.pop(channel)()
            adapter.downloads = self.downloads
        return adapter

    def channels(self) -> list[str]:
        return sorted({*self._by_channel, *self._factories})
