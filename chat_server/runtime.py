"""What the actions need at hand: settings, database, bus, metrics (lives in lifespan state)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .bus import Bus
from .db import Database
from .group_commit import GroupCommit
from .login_limits import LoginLimits
from .metrics import Metrics
from .settings import Settings

if TYPE_CHECKING:
    from .actions.inbound_batch import Inbound
    from .actions.membership import SegmentCache
    from .actions.scoring import ScoringState
    from .actions.thread import Stored
    from .actions.tracking import TrackItem
    from .actions.trigger_sends import TriggerCache


@dataclass
class Runtime:
    settings: Settings
    db: Database  # its writes publish on `bus` after they commit
    bus: Bus
    metrics: Metrics
    # Contacts' messages, written in batches (actions.inbound_batch.contact_message_writes).
    inbound_writes: GroupCommit[Inbound, Stored]
    # Set when a committed transaction queued a reply for a channel: the outbound worker
    # sends it at once instead of at its next poll.
    outbound_queued: asyncio.Event = field(default_factory=asyncio.Event)
    # Failed-login counters; in memory unless the app gives it the Redis-backed one.
    login_limits: LoginLimits | None = None
    # Behaviour events, written in batches (actions.tracking.event_writes). Its writer scores
    # and checks segments with this runtime, so whoever builds the runtime sets it right after.
    event_writes: GroupCommit[list[TrackItem], list[int | None]] | None = None
    # The parsed segment and scoring rule indexes, rebuilt when the definitions change
    # (actions.membership.segment_cache, actions.scoring.scoring_state).
    segments: SegmentCache | None = None
    scoring: ScoringState | None = None
    # The parsed triggers (actions.trigger_sends.trigger_cache), and the worker's wake-up:
    # set when a committed transaction scheduled a send.
    triggers: TriggerCache | None = None
    triggers_due: asyncio.Event = field(default_factory=asyncio.Event)

    def limits(self) -> LoginLimits:
        if self.login_limits is None:
            self.login_limits = LoginLimits(self.settings)
        return self.login_limits
