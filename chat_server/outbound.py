"""The outbound queue's worker: sends queued replies through their channel's adapter, retries
with backoff (or when the service says, on 429), and records sent / failed with the reason."""

from __future__ import annotations

import asyncio
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
from .queue_runner import QueueRunner
from .runtime import Runtime

log = logging.getLogger(__name__)


class OutboundWorker(QueueRunner[Job]):
    """A reply that hangs until its timeout holds back only its own conversation (whose next
    reply is not due until it is done), never the others."""

    what = "outbound queue"
    poll_seconds = 0.5
    max_in_flight = 20  # replies being sent at once (each from a different conversation)
    stop_grace_seconds = 15.0

    def __init__(self, rt: Runtime, channels: ChannelService) -> None:
        super().__init__(rt.outbound_queued)  # set on commit of a queued reply (actions.messages)
        self.rt = rt
        self.channels = channels

    async def claim(self, limit: int) -> list[Job]:
        return await claim_due_jobs(self.rt, limit=limit)

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
