"""What the actions need at hand: settings, database, bus, metrics (lives in lifespan state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .bus import Bus
from .db import Database
from .group_commit import GroupCommit
from .login_limits import LoginLimits
from .metrics import Metrics
from .settings import Settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: Bus
    metrics: Metrics
    # Contacts' messages written in batches; made by actions.inbound_batch on first use.
    inbound_writes: GroupCommit[Any, Any] | None = None
    # Failed-login counters; in memory unless the app gives it the Redis-backed one.
    login_limits: LoginLimits | None = None

    def limits(self) -> LoginLimits:
        if self.login_limits is None:
            self.login_limits = LoginLimits(self.settings)
        return self.login_limits
