"""What the actions need at hand: settings, database, bus, metrics (lives in lifespan state)."""

from __future__ import annotations

from dataclasses import dataclass

from .bus import Bus
from .db import Database
from .metrics import Metrics
from .settings import Settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: Bus
    metrics: Metrics
