"""What the actions need at hand: settings, database, bus, metrics (lives in lifespan state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .bus import Bus
from .db import Database
from .group_commit import GroupCommit
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
    # Behaviour: the parsed segment index (actions.membership) and the event writer (actions.tracking).
    segments: Any = None
    scoring: Any = None
    event_writes: GroupCommit[Any, Any] | None = None
