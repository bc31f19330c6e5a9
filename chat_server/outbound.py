"""The outbound queue's worker: sends queued replies through their channel's adapter, retries
with backoff (or when the service says, on 429), and records sent / failed with the reason."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from integrations.base import OutboundAttachment, OutboundMessage, PermanentFailure, RetryLater

from .actions.attachments import readable_attachment
from .actions.links import reply_token
from .actions.outbound import (
    Job,
    claim_due_jobs,
    do_mark_failed,
    do_mark_retry,
    do_mark_sent,
    do_record_part,
)
from .automatic_email import dress, is_automatic_email
from .channels import ChannelService
from .runtime import Runtime

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
MAX_IN_FLIGHT = 20  # replies being sent at once (each from a different conversation)
STOP_GRACE_SECONDS = 15.0


class OutboundWorker:
    def __init__(self, rt: Runtime, channels: ChannelService) -> None:
        self.rt = rt
        self.channels = channels
        self._task: asyncio.Task[None] | None = None
        # Set on commit of a queued reply (actions.messages), so a reply leaves at once.
        self._wake = rt.outbound_queued
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Let the sends in hand finish (a send cancelled halfway might go out unrecorded,
        and a query cancelled mid-flight can leave its connection behind); then stop."""
        if self._task:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_SECONDS)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        # Each claimed reply is sent by its own task, and claiming goes on while they run: a
        # reply that hangs until its timeout holds back only its own conversation (whose next
        # reply is not due until it is done), never the others.
        in_flight: set[asyncio.Task[None]] = set()
        while not self._stopping:
            # Cleared before looking, not after: a reply committed while we look wakes the
            # next wait at once instead of being missed until the poll.
            self._wake.clear()
            try:
                room = MAX_IN_FLIGHT - len(in_flight)
                jobs = await claim_due_jobs(self.rt, limit=room) if room > 0 else []
                for job in jobs:
                    task = asyncio.create_task(self.send(job))
                    in_flight.add(task)
                    task.add_done_callback(lambda t: self._sent(in_flight, t))
                if jobs:
                    continue
            except Exception:
                log.exception("the outbound queue failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
        try:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        except asyncio.CancelledError:  # the stop grace ran out
            for task in in_flight:
                task.cancel()
            raise

    def _sent(self, in_flight: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
        in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recording a reply's delivery failed; it is tried again when its lease ends",
                      exc_info=task.exception())
        self._wake.set()  # the conversation's next reply may be due now

    async def send(self, job: Job) -> None:
        m = job.message
        assert m.id is not None
        channel = str(m.channel)  # read back from the database as a plain string
        if job.recipient is None:
            await do_mark_failed(self.rt, job.job_id, f"the contact has no {channel} address")
            return
        adapter = self.channels.adapter(job.instance.channel)
        thread = job.thread

        async def part_sent(external_id: str) -> None:
            await do_record_part(self.rt, job.job_id, external_id)

        outbound = OutboundMessage(
            message_id=m.id, recipient=job.recipient, text=m.text, author_name=m.author_name,
            attachments=[a for a in (await self._files(m.attachments)) if a is not None],
            subject=thread.meta.get("subject") if thread else None,
            in_reply_to=thread.external_id if thread else None, references=job.references,
            reply_token=reply_token(self.rt.settings.effective_secret_key, m.conversation_id),
            sent_parts=job.parts, part_sent=part_sent,
        )
        if is_automatic_email(m):
            sender = m.meta.get("site") or job.instance.config.get("display_name") or job.instance.name
            dress(self.rt.settings, m, outbound, str(sender))
        timeout = self.rt.settings.outbound_send_timeout
        try:
            config = self.channels.config(job.instance)
            sent = await asyncio.wait_for(adapter.send(config, outbound), timeout)
        except RetryLater as exc:
            await do_mark_retry(self.rt, job.job_id, job.attempts, exc.reason, timedelta(seconds=exc.seconds))
        except PermanentFailure as exc:
            await do_mark_failed(self.rt, job.job_id, str(exc))
        except TimeoutError:
            log.warning("sending message %s on %s timed out", m.id, channel)
            await do_mark_retry(self.rt, job.job_id, job.attempts, f"{channel} did not answer within {timeout:g} s")
        except Exception as exc:
            # Anything else is taken as passing (a 5xx, the network, an error code we do not
            # know): counted, retried with backoff, and failed visibly after the last attempt.
            log.warning("sending message %s on %s failed", m.id, channel, exc_info=True)
            await do_mark_retry(self.rt, job.job_id, job.attempts, f"{type(exc).__name__}: {exc}"[:500])
        else:
            meta = {"subject": outbound.subject} if outbound.subject else None
            await do_mark_sent(self.rt, job.job_id, sent.external_id, meta)

    async def _files(self, attachments: list[dict[str, Any]]) -> list[OutboundAttachment | None]:
        files: list[OutboundAttachment | None] = []
        for a in attachments:
            if not isinstance(a.get("id"), int):
                continue
            row = await readable_attachment(self.rt, a["id"], staff=True)
            data = await self.rt.files.get(row.path)
            if data is None:
                raise LookupError(f"attachment {row.id} is gone from the file store")
            files.append(OutboundAttachment(row.name, row.content_type, data))
        return files
