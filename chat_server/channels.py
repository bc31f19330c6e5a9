"""Running the channels: each instance's polling loop, webhook calls, and what to do with
the updates they bring. The adapters translate; this module hands their news to actions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from integrations.base import (
    AdapterRegistry,
    ChannelAdapter,
    ChannelState,
    CredentialsRefused,
    DownloadPolicy,
    ForeignReply,
    InboundMessage,
    ReadReceipt,
    WebhookAnswer,
)

from .actions.attachments import do_store_attachment
from .actions.channels import do_record_health, do_record_update, do_save_cursor
from .actions.errors import ActionError, NotFound
from .actions.inbound import Outcome, do_channel_state, do_channel_update, do_foreign_reply
from .actions.links import issue_link_token
from .actions.outbound import do_channel_receipt
from .models import Channel, ChannelInstance
from .reads.channels import find_instance, list_instances
from .runtime import Runtime

log = logging.getLogger(__name__)

RESCAN_SECONDS = 15.0
STOP_GRACE_SECONDS = 10.0
HEARD_SECONDS = 5.0


class CheckFailed(ActionError):
    status = 422


def _telegram() -> ChannelAdapter:
    from integrations.telegram import TelegramAdapter
    return TelegramAdapter()


def _vk() -> ChannelAdapter:
    from integrations.vk import VkAdapter
    return VkAdapter()


def _email() -> ChannelAdapter:
    from integrations.email import EmailAdapter
    return EmailAdapter()


def default_adapters() -> AdapterRegistry:
    return AdapterRegistry(factories={"telegram": _telegram, "vk": _vk, "email": _email})


class ChannelService:
    def __init__(self, rt: Runtime, adapters: AdapterRegistry) -> None:
        self.rt = rt
        self.adapters = adapters
        settings = rt.settings
        adapters.use_downloads(DownloadPolicy(tuple(settings.channel_file_host_list),
                                              timeout=settings.channel_download_timeout))
        self._listeners: dict[int, tuple[datetime, asyncio.Task[None]]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._rescan: asyncio.Task[None] | None = None
        self._configs: dict[int, tuple[datetime, BaseModel]] = {}
        self._queues: dict[int, asyncio.Queue[tuple[ChannelInstance, list[Any]]]] = {}
        self._heard_at: dict[int, float] = {}
        self.running = False  # polling loops run only where CHAT_CHANNEL_WORKERS is on
        # Work that touches the database is let finish at shutdown rather than cancelled
        # halfway (a query cancelled mid-flight can leave its connection behind).
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    # --- instances ---------------------------------------------------------------------------

    def adapter(self, channel: str) -> ChannelAdapter:
        adapter = self.adapters.get(channel)
        if adapter is None:
            raise NotFound("channel_not_supported", f"no adapter for {channel!r}")
        return adapter

    def config(self, instance: ChannelInstance) -> Any:
        """The instance's settings as its adapter's model (validated once per change)."""
        assert instance.id is not None
        cached = self._configs.get(instance.id)
        if cached is None or cached[0] != instance.updated_at:
            cached = (instance.updated_at, self.adapter(instance.channel).config_model.model_validate(instance.config))
            self._configs[instance.id] = cached
        return cached[1]

    # --- polling loops -----------------------------------------------------------------------

    async def start(self) -> None:
        self.running = True
        await self.refresh()
        self._rescan = asyncio.create_task(self._rescan_forever())

    @contextlib.asynccontextmanager
    async def _working(self) -> AsyncIterator[None]:
        if self._closing:
            raise asyncio.CancelledError
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()

    async def stop(self) -> None:
        self.running = False
        self._closing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), STOP_GRACE_SECONDS)
        tasks = [t for _, t in self._listeners.values()] + list(self._background)
        if self._rescan:
            tasks.append(self._rescan)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._listeners.clear()

    async def _rescan_forever(self) -> None:
        # Instances changed through another process show up here within RESCAN_SECONDS.
        while True:
            await asyncio.sleep(RESCAN_SECONDS)
            try:
                async with self._working():
                    await self.refresh()
            except Exception:
                log.exception("rescanning channel instances failed")

    async def refresh(self) -> None:
        """Start, restart or stop each instance's loop to match the database."""
        if not self.running:
            return
        wanted = {i.id: i for i in await list_instances(self.rt.db, enabled_only=True) if i.id is not None}
        for instance_id, (version, task) in list(self._listeners.items()):
            instance = wanted.get(instance_id)
            if instance is None or instance.updated_at != version:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                del self._listeners[instance_id]
        for instance_id, instance in wanted.items():
            if instance_id not in self._listeners and self.adapters.get(instance.channel):
                task = asyncio.create_task(self._listen(instance), name=f"channel-{instance_id}")
                self._listeners[instance_id] = (instance.updated_at, task)

    async def _listen(self, instance: ChannelInstance) -> None:
        assert instance.id is not None
        adapter = self.adapter(instance.channel)
        failures = 0
        loop = _Loop(self, instance)
        while True:
            try:
                await adapter.listen(self.config(instance), loop.cursor, loop)
                return  # no polling mode for this instance
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                loop.failed(f"stopped: {getattr(exc, 'message', None) or exc or type(exc).__name__}")
                log.exception("channel %s (%s) stopped; restarting", instance.id, instance.channel)
                await asyncio.sleep(min(60, 2**failures))

    def report(self, instance_id: int, error: str | None) -> None:
        """Record how reaching the service went, in the background (a poll must not wait on it)."""
        async def record() -> None:
            async with self._working():
                await do_record_health(self.rt, instance_id, error)
        self.spawn(record())

    # --- inbound -----------------------------------------------------------------------------

    async def webhook(self, instance_id: int, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        instance = await find_instance(self.rt.db, instance_id)
        if instance is None:
            return WebhookAnswer(404, "no such channel")
        if not instance.enabled:
            return WebhookAnswer(404, "channel disabled")
        try:
            config = self.config(instance)
        except ValidationError:
            # Stored before today's rules (a VK callback without its secret): refuse rather
            # than trust calls we cannot check.
            log.warning("channel %s has settings that are no longer valid; refusing its webhook", instance_id)
            return WebhookAnswer(403, "channel settings need updating")
        answer = await self.adapter(instance.channel).webhook(config, headers, body)
        if answer.updates:
            if answer.process_after_answer:
                self._later(instance, answer.updates)
            else:
                await self.process(instance, answer.updates)
        return answer

    def _later(self, instance: ChannelInstance, updates: list[Any]) -> None:
        """Processed after answering, one at a time per instance, so a person's messages are
        stored in the order the service sent them."""
        assert instance.id is not None
        queue = self._queues.get(instance.id)
        if queue is None:
            queue = self._queues[instance.id] = asyncio.Queue()
            self.spawn(self._drain(queue))
        queue.put_nowait((instance, updates))

    async def _drain(self, queue: asyncio.Queue[tuple[ChannelInstance, list[Any]]]) -> None:
        while True:
            instance, updates = await queue.get()
            try:
                async with self._working():
                    await self.process(instance, updates)
            except Exception:
                log.exception("processing %s updates failed", instance.channel)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("processing channel updates failed", exc_info=task.exception())

    async def process(self, instance: ChannelInstance, updates: list[Any]) -> list[Outcome]:
        """Store what the updates say. Raises when storing failed, so pollers fetch them again."""
        assert instance.id is not None
        adapter = self.adapter(instance.channel)
        config = self.config(instance)
        outcomes: list[Outcome] = []
        for update in updates:
            for event in await adapter.parse(config, update):
                if isinstance(event, ReadReceipt):
                    await do_channel_receipt(self.rt, instance.id, Channel(instance.channel), event.sender_id,
                                             event.up_to_external_id)
                    continue
                if isinstance(event, ForeignReply):
                    outcomes.append(await do_foreign_reply(self.rt, instance, event))
                    continue
                if isinstance(event, ChannelState):
                    outcomes.append(await do_channel_state(self.rt, instance, event))
                    continue
                sender = event.sender_id

                async def profile(sender: str = sender) -> str | None:
                    return await adapter.profile_name(config, sender)

                outcomes.append(await do_channel_update(self.rt, instance, event, self.store_files, profile))
        if updates:
            await self._heard(instance.id)
        return outcomes

    async def _heard(self, instance_id: int) -> None:
        """Remember that the instance brought news, at most every HEARD_SECONDS per process, so
        a busy bot does not add a write to each message."""
        now = asyncio.get_running_loop().time()
        if now - self._heard_at.get(instance_id, -HEARD_SECONDS) < HEARD_SECONDS:
            return
        self._heard_at[instance_id] = now
        try:
            await do_record_update(self.rt, instance_id)
        except Exception:
            log.warning("could not record channel %s's last update", instance_id, exc_info=True)

    async def check(self, channel: str, config: dict[str, Any]) -> dict[str, Any]:
        """Ask the service whether `config` (validated) works; what it taught us comes back
        (the bot's username). A refusal is a 422 saying what is wrong; nothing is stored."""
        adapter = self.adapter(channel)
        try:
            return await adapter.check(adapter.config_model.model_validate(config))
        except CredentialsRefused as exc:
            raise CheckFailed(exc.code, exc.message) from exc
        except Exception as exc:
            log.warning("checking %s settings failed unexpectedly", channel, exc_info=True)
            raise CheckFailed("check_failed", f"the {channel} settings could not be checked: {exc}"[:500]) from exc

    async def store_files(self, msg: InboundMessage, contact_id: int) -> list[dict[str, Any]]:
        """Each file through the attachment store (its size and type limits); a file it refuses
        is named in the text instead, so the message itself is never lost."""
        stored = []
        for a in msg.attachments:
            try:
                stored.append(await do_store_attachment(self.rt, a.data, a.name, a.content_type, contact_id=contact_id))
            except ActionError as exc:
                msg.text = (msg.text + "\n" if msg.text else "") + f"[{a.name}: not kept: {exc.message}]"
        return stored

    # --- links -------------------------------------------------------------------------------

    async def link_urls(self, contact_id: int) -> list[dict[str, str]]:
        links = []
        secret = self.rt.settings.effective_secret_key
        for instance in await list_instances(self.rt.db, enabled_only=True):
            adapter = self.adapters.get(instance.channel)
            if adapter is None:
                continue
            url = adapter.link_url(self.config(instance), issue_link_token(secret, contact_id))
            if url:
                links.append({"channel": instance.channel, "url": url})
        return links

    async def register(self, instance: ChannelInstance, base_url: str) -> None:
        assert instance.id is not None
        url = f"{base_url.rstrip('/')}/api/v1/channels/{instance.id}/webhook"
        await self.adapter(instance.channel).register(self.config(instance), url)


class _Loop:
    """What an instance's polling loop reports to: it stores the updates and moves the cursor
    past them, and records the instance's health when it changes (not on every poll)."""

    def __init__(self, service: ChannelService, instance: ChannelInstance) -> None:
        assert instance.id is not None
        self.service, self.instance, self.instance_id = service, instance, instance.id
        self.cursor = instance.cursor
        self._last: tuple[str | None] | None = None  # the last health reported; None: nothing yet

    async def __call__(self, updates: list[Any], cursor: str | None) -> None:
        async with self.service._working():
            await self.service.process(self.instance, updates)
            if cursor is not None and cursor != self.cursor:
                await do_save_cursor(self.service.rt, self.instance_id, cursor)
                self.cursor = cursor

    def reached(self) -> None:
        self._report(None)

    def failed(self, reason: str) -> None:
        self._report(reason)

    def _report(self, error: str | None) -> None:
        if self._last != (error,):
            self._last = (error,)
            self.service.report(self.instance_id, error)
