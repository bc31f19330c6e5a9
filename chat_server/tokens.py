"""Signed visitor tokens: the widget keeps one and proves with it who it is on reconnect.

A token names the visitor id, the version of that visitor identity it was issued under, and
(in its signature's timestamp) when it was issued. It is good until `max_age` passes or the
identity's version goes up (revocation: the widget's `shutdown()`). The widget gets a fresh one
in every `welcome` and, on a socket that stays open, a `token` frame before it ages out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from .settings import Settings


@dataclass(frozen=True)
class VisitorClaim:
    visitor_id: str
    version: int
    issued_at: float
    # A token from before tokens expired: honoured only by the widget's hello, which replaces it.
    legacy: bool = False


class VisitorTokens:
    def __init__(self, secret: str, max_age_seconds: int = 30 * 86400) -> None:
        self.max_age = max_age_seconds
        self._timed = URLSafeTimedSerializer(secret, salt="visitor-v2")
        self._legacy = URLSafeSerializer(secret, salt="visitor")

    def issue(self, visitor_id: str, version: int = 0) -> str:
        return self._timed.dumps([visitor_id, version])

    def claim(self, token: str | None, *, legacy: bool = False) -> VisitorClaim | None:
        """What a genuine, unexpired token says; None for a missing, forged, damaged or old one.
        The version is checked against the database by the caller."""
        if not token:
            return None
        try:
            value, issued = self._timed.loads(token, max_age=self.max_age, return_timestamp=True)
        except SignatureExpired:
            return None
        except BadSignature:
            return self._legacy_claim(token) if legacy else None
        if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], str)
                or not isinstance(value[1], int) or isinstance(value[1], bool)):
            return None
        return VisitorClaim(value[0], value[1], issued.timestamp())

    def _legacy_claim(self, token: str) -> VisitorClaim | None:
        try:
            value = self._legacy.loads(token)
        except BadSignature:
            return None
        return VisitorClaim(value, 0, 0.0, legacy=True) if isinstance(value, str) else None

    def renew_due(self, issued_at: float) -> float:
        """When (wall time) a socket should hand its widget a fresh token: halfway through."""
        return issued_at + self.max_age / 2

    @staticmethod
    def now() -> float:
        return time.time()


def visitor_tokens(settings: Settings) -> VisitorTokens:
    return VisitorTokens(settings.effective_secret_key, settings.visitor_token_days * 86400)
