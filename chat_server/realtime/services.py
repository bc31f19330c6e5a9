"""What the socket endpoints share, kept in the app's lifespan state."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..actions.arrivals import Arrivals
from ..actions.operators import OnlineOperators
from ..runtime import Runtime
from .connection import Backfill
from .hub import Hub
from .ratelimit import RateLimiter
from .tokens import VisitorTokens


@dataclass
class SocketServices:
    rt: Runtime
    hub: Hub
    backfill: Backfill
    tokens: VisitorTokens
    connect_limiter: RateLimiter
    message_limiter: RateLimiter
    event_limiter: RateLimiter  # `track` frames per visitor
    arrivals: Arrivals
    # Kept current by the presence news the bus brings (see app.py).
    online: OnlineOperators
    # Typing news is cosmetic: a few per second is plenty.
    typing_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(120))
    # conversation id -> contact id, for typing news from operators without a database read
    contact_of: dict[int, int] = field(default_factory=dict)
